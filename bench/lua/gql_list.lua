-- POST /graphql: first 50 tasks of a random user, newest first. The body is built
-- by the bench per target (tasks(first: 50) for ours, allTasks(condition: ...) for
-- PostGraphile).
local lib = dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")

request = function()
   local u = lib.user()
   return wrk.format("POST", "/graphql", u.headers, u.body)
end
