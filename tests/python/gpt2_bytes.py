"""GPT-2's byte-level alphabet (openai/gpt-2 encoder.py `bytes_to_unicode`), shared by the byte-level peers."""


def byte_decoder():
    """The byte each character of GPT-2's byte-level alphabet stands for."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}
