---@meta
-- LuaLS annotations of the API hashi gives scripts (see scripts/README.md). Not loaded at run time.

---@class hashi
---@field version string hashi's version
---@field script string path of the running script
hashi = {}

---Writes a message to hashi's log (shown with -v).
---@param msg string
function hashi.log(msg) end

---@class Scored
---@field id integer old-vocabulary id
---@field score number Dice score of shared character bigrams, in [0, 1]

---Init strategies only: the old pieces most similar to `piece`, best first.
---@param piece string
---@param k integer
---@return Scored[]
function hashi.similar(piece, k) end

---A vector of the old embedding space: an old id, `{id, weight}` pairs, or a recipe's terms (no mean or noise).
---@alias Target integer|{[1]: integer, [2]: number}[]|Recipe

---Init strategies only, inside `recipe`: the L2 norm of `target` in the old `embed_tokens`.
---@param target Target
---@return number
function hashi.norm(target) end

---@class Similar
---@field id integer old-vocabulary id
---@field score number cosine similarity, in [-1, 1]

---Init strategies only, inside `recipe`: the `k` old rows most similar (cosine) to `target`, best first, leaving out
---the ids in `exclude` and zero rows. One pass over the old matrix.
---@param target Target
---@param k integer
---@param exclude? integer[]
---@return Similar[]
function hashi.nearest(target, k, exclude) end

---Init strategies only, inside `recipe`: orthogonal matching pursuit — at most `k` rows of `candidates` (every old
---row when nil or empty), chosen greedily and refitted by least squares, whose weighted sum approximates `target`.
---@param target Target
---@param candidates? integer[]
---@param k integer
---@return {[1]: integer, [2]: number}[] terms (old_id, weight) pairs, in the order chosen
function hashi.omp(target, candidates, k) end

---@class NewToken
---@field id integer id in the new vocabulary
---@field piece string the piece ("▁" for spaces)
---@field text string the piece as text
---@field category "latin"|"cjk"|"hiragana"|"katakana"|"digit"|"symbol"|"byte"|"partial"|"special"|"other"
---@field old_ids integer[] the old tokenizer's pieces for the same text

---@class InitContext
---@field old_vocab_size integer
---@field new_vocab_size integer
---@field hidden_size integer
---@field matched integer new tokens found in the old vocabulary
---@field old_row_norm number mean L2 norm of the old embedding rows
---@field old_std number std of the old embedding entries around the mean row

---@class Recipe
---@field terms? {[1]: integer, [2]: number}[] (old_id, weight) pairs
---@field mean? number weight of the mean old row
---@field noise? number std of added Gaussian noise
---@field scale? number factor on terms and mean (not the noise); 1 when absent

---@class Strategy
---@field name? string
---@field recipe fun(token: NewToken, ctx: InitContext): Recipe
