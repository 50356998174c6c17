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

---@class Strategy
---@field name? string
---@field recipe fun(token: NewToken, ctx: InitContext): Recipe
