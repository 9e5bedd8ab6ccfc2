rockspec_format = "3.0"
package = "ticketscloud"
version = "0.1.0-1"
source = {
   url = "git+https://github.com/lua-ticketscloud/lua-ticketscloud.git",
   tag = "v0.1.0",
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
   "lua-cjson",
}
-- C dependencies are found by the Makefile with pkg-config (libcurl, grpc,
-- libprotobuf-c, protoc-c; the sandbox adds libmicrohttpd and jansson):
-- on Debian, the packages of tools/debian-packages.
build = {
   type = "make",
   build_target = "all",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA_CFLAGS = "-I$(LUA_INCDIR)",
      LUA = "lua$(LUA_VERSION)",
   },
   install_variables = {
      LUADIR = "$(LUADIR)",
      LIBDIR = "$(LIBDIR)",
      BINDIR = "$(BINDIR)",
      LUA = "lua$(LUA_VERSION)",
   },
}
