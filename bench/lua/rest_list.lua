-- GET /api/tasks?limit=50 as a random user (bearer token, or X-User-Id for the floor).
local lib = dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")

request = function()
   local u = lib.user()
   return wrk.format("GET", "/api/tasks?limit=50", u.headers)
end
