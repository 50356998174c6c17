---@meta
-- LuaLS annotations of the API hashi gives scripts (see scripts/README.md). Not loaded at run time: editors read
-- this folder as a workspace library (the repository's .luarc.json). Every kind of file hashi reads returns a table:
--
-- | file                              | type                 | read by                        | in            |
-- |-----------------------------------|----------------------|--------------------------------|---------------|
-- | corpus list                       | `hashi.CorpusList`   | hashi data prepare, run        | plan.lua      |
-- | curriculum (plan)                 | `hashi.Plan`         | hashi data plan, train, export | plan.lua      |
-- | learning-rate schedule            | `hashi.Schedule`     | hashi train, hashi export      | schedule.lua  |
-- | embedding-init strategy           | `hashi.Strategy`     | hashi transfer, hashi run      | init.lua      |
-- | experiment                        | `hashi.Experiment`   | hashi train, hashi export      | config.lua    |
-- | run file                          | `hashi.RunFile`      | hashi run                      | config.lua    |
--
-- Mark a file's kind with `---@type hashi.X` on the line above its `return` (LuaLS 3.7 or later); then every field
-- completes and `recipe`, `lr` and `engine_schedule` know their parameters' types.
--
-- What the `hashi` table holds depends on the kind of script (each script runs in a Lua state of its own; modules
-- it `require`s share its state, so they see the same table):
--
--   version, script, log     every script
--   quick                    run files only (`hashi run`); nil elsewhere, also in the curricula, schedules and
--                            strategies a run file names (hashi loads each in a state of its own)
--   similar                  init strategies only
--   norm, nearest, omp       init strategies only, and callable only while `recipe(token, ctx)` runs (an error at
--                            the file's top level)

---The global table hashi puts in every script's state.
---@class hashi
---@field version string hashi's version
---@field script string path of the running script (as hashi was given it)
---**Run files only** (`hashi run`): true under `hashi run --quick`, false otherwise; nil in every other kind of
---script, including the curricula and schedules a run file names. One run file can so hold a full and a
---test-sized setting: `total_tokens = hashi.quick and 49152 or 786432`.
---@field quick? boolean
hashi = {}

---Writes `msg` to hashi's log (info level, tagged with the script's path; shown with -v).
---@param msg string
function hashi.log(msg) end
