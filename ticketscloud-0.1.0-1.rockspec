rockspec_format = "3.0"
package = "ticketscloud"
version = "0.1.0-1"
-- The rock is built from a checkout: `luarocks make` builds the directory it
-- runs in and never fetches the source. Elsewhere, install the binary rock
-- that `luarocks pack ticketscloud` writes after `luarocks make`. (This
-- luarocks cannot fetch a local directory, so `luarocks install` or `pack`
-- of this rockspec itself stop with "Couldn't extract archive".)
source = {
   url = ".",
}
description = {
   summary = "Ticketscloud distributor API for Lua: orders over REST, catalogue over gRPC",
   detailed = [[
      A C core (libcurl, the gRPC C core with protobuf-c, exact money, order
      desired-state computation) with Lua helpers for mixed seated/unseated
      orders, and tc-sandbox, a stateful local simulator of the API.
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.1",
   "argparse",   -- for the tc command only (ticketscloud.cli)
}
-- The rock is the module: ticketscloud.core (C) and lua/ticketscloud/, with
-- the tc command (bin/tc, which luarocks wraps to find the tree's modules).
-- Its C dependencies are found by the Makefile with pkg-config: libcurl, grpc,
-- libprotobuf-c and yajl, with protoc-c at build time (on Debian, the packages of
-- tools/debian-packages). tc-sandbox, which adds libmicrohttpd and jansson,
-- is not part of the rock: `make install` installs it.
build = {
   type = "make",
   build_target = "module",
   install_target = "install-module",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA = "$(LUA)",
      LUA_CFLAGS = "-I$(LUA_INCDIR)",
   },
   install_variables = {
      LUA = "$(LUA)",
      LUA_CFLAGS = "-I$(LUA_INCDIR)",
      LUADIR = "$(LUADIR)",
      LIBDIR = "$(LIBDIR)",
   },
   install = {
      bin = { tc = "bin/tc" },
   },
}
-- `luarocks test` runs busted with the checkout's .busted: by default the
-- specs that need no sandbox; `-- --run=full` runs spec/ (see README.md).
test_dependencies = {
   "busted",
}
test = {
   type = "busted",
}
