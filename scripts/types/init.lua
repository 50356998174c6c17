---@meta
-- Embedding-init strategies (scripts/init/, `hashi transfer --init FILE`, a run file's `transfer.init`). Mirrors
-- `NewToken`, `InitContext` and `Recipe` (hashi-transfer recipe.rs) and the functions hashi-cli's transfer.rs
-- registers on the `hashi` table of a strategy's state.

---An old-vocabulary id with a weight: a positional pair `{ id, weight }` (not `{ id = ..., weight = ... }`).
---@alias hashi.Term {[1]: integer, [2]: number}

---Script category of a token's bytes.
---@alias hashi.TokenCategory "latin"|"cjk"|"hiragana"|"katakana"|"digit"|"symbol"|"byte"|"partial"|"special"|"other"

---What a strategy sees of a new token that has no counterpart in the old vocabulary (matched tokens keep their
---rows; `recipe` is not called for them).
---@class hashi.NewToken
---@field id integer id in the new vocabulary
---The piece in a spelling common to every tokenizer family: spaces as "▁", bytes that are not UTF-8 on their
---own as `\xHH` (a byte-level `Ġthe` is `▁the`).
---@field piece string
---@field text string the piece as text (spaces as spaces)
---@field category hashi.TokenCategory script category of its bytes
---@field old_ids integer[] the old tokenizer's pieces for the same bytes (may be empty)

---Facts about the transfer.
---@class hashi.InitContext
---@field old_vocab_size integer rows of the old matrices
---@field new_vocab_size integer rows of the new matrices
---@field hidden_size integer width of a row
---@field matched integer new tokens found in the old vocabulary
---@field old_row_norm number mean L2 norm of the old embedding rows
---@field old_std number std of the old embedding entries around the mean row

---How to build one new row: `scale * (Σ weight * old_row[id] + mean * (mean old row)) + noise * N(0, 1)`. Every
---field is optional; unknown fields are errors. For an untied model the same recipe builds the `embed_tokens` row
---from the old `embed_tokens` and the `lm_head` row from the old `lm_head`.
---@class hashi.Recipe
---@field terms? hashi.Term[] `{ old_id, weight }` pairs (ids below `ctx.old_vocab_size`, finite weights)
---@field mean? number weight of the mean old row (default 0)
---@field noise? number std of added Gaussian noise, 0 or more (default 0)
---@field scale? number factor on the terms and the mean, not on the noise (default 1)

---A strategy file: `return { name = "...", recipe = function(token, ctx) ... end }`.
---@class hashi.Strategy
---@field name? string name in reports (default: the file's name without `.lua`)
---The recipe of one unmatched new token, called once per such token.
---@field recipe fun(token: hashi.NewToken, ctx: hashi.InitContext): hashi.Recipe

---An old piece sharing character bigrams with a piece (`hashi.similar`). Named fields, unlike a `hashi.Term`:
---`{ s.id, weight }` turns one into a term (`recipes.softmax` does it for a list).
---@class hashi.SimilarPiece
---@field id integer old-vocabulary id
---@field score number Dice score of shared character bigrams, in [0, 1]

---An old row near a target (`hashi.nearest`). Named fields, unlike a `hashi.Term`.
---@class hashi.NearestRow
---@field id integer old-vocabulary id
---@field score number cosine similarity, in [-1, 1]

---A vector of the old embedding space (`embed_tokens`): an old id, a list of `{ id, weight }` pairs, or a recipe
---with `terms` only (no `mean` or `noise`).
---@alias hashi.Target integer|hashi.Term[]|hashi.Recipe

---**Init strategies only** (nil in every other kind of script): up to `k` old-vocabulary pieces sharing the most
---character bigrams with `piece`, best first (ties: lower id). Text pieces only: no special, added, byte or
---partial-character pieces. Callable at the file's top level too.
---@param piece string a piece in `token.piece`'s spelling ("▁" for spaces)
---@param k integer
---@return hashi.SimilarPiece[] found `{ {id = ..., score = ...}, ... }`, not `{ id, weight }` pairs
function hashi.similar(piece, k) end

---**Init strategies only, inside `recipe`** (an error elsewhere): the L2 norm of `target` in the old `embed_tokens`.
---@param target hashi.Target
---@return number
function hashi.norm(target) end

---**Init strategies only, inside `recipe`** (an error elsewhere): the `k` old rows most similar (cosine) to
---`target`, best first (ties: lower id), leaving out the ids in `exclude` and zero rows. One pass over the old
---matrix.
---@param target hashi.Target
---@param k integer
---@param exclude? integer[]
---@return hashi.NearestRow[] found `{ {id = ..., score = ...}, ... }`, not `{ id, weight }` pairs
function hashi.nearest(target, k, exclude) end

---**Init strategies only, inside `recipe`** (an error elsewhere): orthogonal matching pursuit. At most `k` rows of
---`candidates` (every old row when nil or empty), chosen greedily and refitted by least squares, whose weighted
---sum approximates `target`; stops early when the residual is below 1e-6 of the target's norm. Costs `k` passes
---over the candidates.
---@param target hashi.Target
---@param candidates? integer[]
---@param k integer
---@return hashi.Term[] terms `{ old_id, weight }` pairs in the order chosen, ready for a recipe's `terms`
function hashi.omp(target, candidates, k) end

-- Former names (scripts/types/hashi.lua before the split), kept so that existing annotations still resolve.

---@alias Scored hashi.SimilarPiece
---@alias Similar hashi.NearestRow
---@alias Target hashi.Target
---@alias NewToken hashi.NewToken
---@alias InitContext hashi.InitContext
---@alias Recipe hashi.Recipe
---@alias Strategy hashi.Strategy
