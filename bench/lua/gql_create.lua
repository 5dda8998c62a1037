-- POST /graphql: createTask mutation with a fresh title, as a random writer user.
local lib = dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")

request = function()
   local u = lib.user()
   return wrk.format("POST", "/graphql", u.headers, lib.numbered_body(u))
end
