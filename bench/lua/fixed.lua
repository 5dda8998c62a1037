-- One fixed request (method, path, headers, body from the data file's first user).
-- Used by `python -m bench scale` for single-user latency probes.
local lib = dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
local u = lib.users[1]

request = function()
   return wrk.format(u.method, u.path, u.headers, u.body)
end
