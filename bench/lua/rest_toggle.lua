-- PATCH /api/tasks/{id}/complete (toggle) on a random task of a random user.
local lib = dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")

request = function()
   local u = lib.user()
   return wrk.format("PATCH", "/api/tasks/" .. lib.task_id(u) .. "/complete", u.headers)
end
