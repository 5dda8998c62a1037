-- GET /api/tasks/{id} for a random task of a random user.
local lib = dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")

request = function()
   local u = lib.user()
   return wrk.format("GET", "/api/tasks/" .. lib.task_id(u), u.headers)
end
