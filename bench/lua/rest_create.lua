-- POST /api/tasks {"title": "bench <thread>-<n>"} as a random writer user.
local lib = dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")

request = function()
   local u = lib.user()
   return wrk.format("POST", "/api/tasks", u.headers, lib.numbered_body(u))
end
