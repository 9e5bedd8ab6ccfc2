# lua-ticketscloud: the module (ticketscloud/core.so + lua/) and tc-sandbox.
#
#   make                  module for Lua 5.4 and the sandbox
#   make module           the module alone (what the rockspec builds)
#   make install          module, the tc command, tc-sandbox and its catalog under PREFIX
#   make install-module   the module alone, into LUADIR and LIBDIR (luarocks)
#   make LUA=luajit       the same module for LuaJIT 2.1 (OpenResty)
#   make demo             the order example's two mixed orders against the sandbox
#   make nginx-conf       examples/nginx.conf made runnable: build/nginx/nginx.conf
#   make hall             docs/hall.svg, the README's picture of the demo hall (tc map)
#   make test             every check CI runs
#   make spec SPEC=spec/money_spec.lua   one spec (or several), as make test runs it
#   make bench            benchmarks, with the peers beside the module
#   make peers            the bare C peers of the benchmarks (build/peers)
#   make bench-chart      docs/benchmarks-ratios.png from the last make bench
#   make bench-nginx      the client inside nginx under wrk (docs/openresty.md)
#   make chaos            orders under network faults: none lost, duplicated or orphaned
#   make hostile          tc-sandbox against hostile clients (tools/hostile.py)
#   make docs             the API reference (LDoc) in build/docs/index.html
#
# Every variable below can be overridden on the command line.

# The one version (core._VERSION): the rockspec's file name and version
# carry it with a rock revision; tools/check-version, a step of `make test`,
# compares them. CHANGELOG.md says what each version changed.
VERSION     = 0.1.0

LUA        ?= lua5.4
# luarocks passes LUA as the interpreter's path (/usr/bin/lua5.4): only its
# name picks the build directory, the pkg-config package and the version.
LUA_NAME    = $(notdir $(LUA))
LUA_PC     ?= $(if $(filter luajit,$(LUA_NAME)),luajit,$(LUA_NAME))
PKG_CONFIG ?= pkg-config
CC         ?= cc
BUILD      ?= build
CFLAGS     ?= -O2 -g
# SAN=1 builds everything with AddressSanitizer and UBSan.
SAN        ?=

LUA_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags $(LUA_PC))
PROTOC_C   ?= protoc-c
PROTO_INC  ?= /usr/include

WARN        = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
DEFS        = -D_GNU_SOURCE -DTC_VERSION='"$(VERSION)"'
SANITIZE    = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# It also makes tc-sandbox check each order answer it writes as text
# against the same answer made and dumped by jansson (orders.c), and the
# module check each message it decodes against protobuf-c's unpack (codec.c).
SANFLAGS    = $(if $(SAN),$(SANITIZE) -DSANDBOX_CHECK_RENDER -DTC_CHECK_DECODE)

MODULE_PKGS  = libcurl grpc libprotobuf-c yajl
SANDBOX_PKGS = grpc libprotobuf-c libmicrohttpd jansson

GEN        = $(BUILD)/gen
PROTOS     = $(sort $(wildcard proto/*.proto))
WKT        = google/protobuf/timestamp.proto google/protobuf/any.proto
GEN_SRCS   = $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS)) \
             $(patsubst %.proto,$(GEN)/%.pb-c.c,$(WKT))
GEN_OBJS   = $(GEN_SRCS:.c=.o)

# The sandbox alone also serves gRPC health checks and server reflection:
# their protocols (proto/grpc/), descriptor.proto to read the descriptors,
# and every file descriptor of what it serves, made by protoc at build time
# and compiled in as bytes (descriptors.c). Reflection v1alpha has v1's
# messages, so only its descriptor is needed.
SERVICE_PROTOS = grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto
ALPHA_PROTO    = grpc/reflection/v1alpha/reflection.proto
SANDBOX_GEN_SRCS = $(patsubst %.proto,$(GEN)/%.pb-c.c,$(SERVICE_PROTOS)) \
                   $(GEN)/google/protobuf/descriptor.pb-c.c $(GEN)/descriptors.c
SANDBOX_GEN_OBJS = $(SANDBOX_GEN_SRCS:.c=.o)

MODULE_DIR  = $(BUILD)/$(LUA_NAME)
MODULE      = $(MODULE_DIR)/ticketscloud/core.so
MODULE_SRCS = $(sort $(wildcard src/*.c))
MODULE_OBJS = $(patsubst src/%.c,$(MODULE_DIR)/obj/%.o,$(MODULE_SRCS))

SANDBOX      = $(BUILD)/tc-sandbox
SANDBOX_SRCS = $(sort $(wildcard src/sandbox/*.c))
# bytes.c holds the UTF-8, id and key rules that the module and the sandbox share.
SANDBOX_OBJS = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SANDBOX_SRCS)) $(BUILD)/obj/bytes.o \
               $(SANDBOX_GEN_OBJS)

.PHONY: all module sandbox host deps demo hall nginx-conf test spec bench bench-chart \
	bench-nginx peers chaos hostile docs install install-module clean

# Where `make install` puts things; luarocks sets LUADIR and LIBDIR itself.
PREFIX     ?= /usr/local
LUA_VER    ?= $(if $(filter luajit,$(LUA_NAME)),5.1,$(patsubst lua%,%,$(LUA_NAME)))
LUADIR     ?= $(PREFIX)/share/lua/$(LUA_VER)
LIBDIR     ?= $(PREFIX)/lib/lua/$(LUA_VER)
BINDIR     ?= $(PREFIX)/bin
.SECONDARY: $(GEN_SRCS) $(SANDBOX_GEN_SRCS)

all: module sandbox

module: $(MODULE)
sandbox: $(SANDBOX)

# protoc-c writes a .pb-c.c and .pb-c.h for each .proto; the .h files are
# made by the same rule, so every object waits for the whole set.
$(GEN)/.stamp: $(PROTOS)
	@mkdir -p $(GEN)
	$(PROTOC_C) -Iproto -I$(PROTO_INC) --c_out=$(GEN) $(notdir $(PROTOS)) $(WKT)
	@touch $@

$(GEN_SRCS): $(GEN)/.stamp

$(GEN)/.sandbox-stamp: $(addprefix proto/,$(SERVICE_PROTOS) $(ALPHA_PROTO)) $(PROTOS)
	@mkdir -p $(GEN)
	$(PROTOC_C) -Iproto -I$(PROTO_INC) --c_out=$(GEN) $(SERVICE_PROTOS) \
		google/protobuf/descriptor.proto
	$(PROTOC_C) -Iproto -I$(PROTO_INC) --include_imports \
		--descriptor_set_out=$(GEN)/descriptors.pb $(notdir $(PROTOS)) $(SERVICE_PROTOS) \
		$(ALPHA_PROTO)
	@touch $@

$(filter-out $(GEN)/descriptors.c,$(SANDBOX_GEN_SRCS)): $(GEN)/.sandbox-stamp

# The FileDescriptorSet as a C array (od and sed: no tool beyond POSIX).
$(GEN)/descriptors.c: $(GEN)/.sandbox-stamp
	{ echo '/* Generated from proto/ by the Makefile: a FileDescriptorSet. */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const unsigned char tc_descriptor_set[];'; \
	  echo 'extern const size_t tc_descriptor_set_len;'; \
	  echo 'const unsigned char tc_descriptor_set[] = {'; \
	  od -An -v -tu1 $(GEN)/descriptors.pb | sed 's/^ *//; s/  */,/g; s/$$/,/'; \
	  echo '};'; \
	  echo 'const size_t tc_descriptor_set_len = sizeof tc_descriptor_set;'; } > $@.tmp
	mv $@.tmp $@

$(GEN)/%.o: $(GEN)/%.c
	$(CC) -std=c11 -fPIC -fvisibility=hidden $(CFLAGS) $(SANFLAGS) -I$(GEN) $(shell $(PKG_CONFIG) --cflags libprotobuf-c) -c $< -o $@

$(MODULE_DIR)/obj/%.o: src/%.c $(wildcard src/*.h) $(GEN)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -fPIC -fvisibility=hidden $(CFLAGS) $(SANFLAGS) $(DEFS) -Isrc -I$(GEN) \
		$(LUA_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(MODULE_PKGS)) -c $< -o $@

# The module never links liblua: the host process (lua, luajit, nginx) has it.
$(MODULE): $(MODULE_OBJS) $(GEN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -pthread $(CFLAGS) $(SANFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs $(MODULE_PKGS))

$(BUILD)/obj/sandbox/%.o: src/sandbox/%.c $(wildcard src/sandbox/*.h) $(GEN)/.stamp \
		$(GEN)/.sandbox-stamp
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) $(DEFS) -Isrc/sandbox -Isrc -I$(GEN) \
		$(shell $(PKG_CONFIG) --cflags $(SANDBOX_PKGS)) -c $< -o $@

$(BUILD)/obj/bytes.o: src/bytes.c src/bytes.h
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) $(DEFS) -c $< -o $@

$(SANDBOX): $(SANDBOX_OBJS) $(GEN_OBJS)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs $(SANDBOX_PKGS)) -lpthread

# A Lua 5.4 interpreter carrying the sanitizer runtime, for `make test`'s
# sanitizer step (see tools/lua_host.c).
LUA_HOST = $(BUILD)/lua-host
host: $(LUA_HOST)
$(LUA_HOST): tools/lua_host.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) $(shell $(PKG_CONFIG) --cflags lua5.4) $< -o $@ \
		$(shell $(PKG_CONFIG) --libs lua5.4)

deps:
	@tools/deps

# The order example's two mixed orders against a sandbox on free ports.
demo: deps
	@$(MAKE) --no-print-directory -s all
	@LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(MODULE_DIR)/?.so;;' \
		TC_SANDBOX='$(SANDBOX)' $(LUA) examples/mixed_order.lua

# examples/nginx.conf rendered by tools/nginx-conf.lua into a runnable
# $(BUILD)/nginx/nginx.conf (its prefix, with logs/ and temp/), with the
# LuaJIT module it loads; it prints the command that starts nginx.
NGINX_PORT ?= 8080
NGINX_API  ?= https://ticketscloud.com

nginx-conf: deps
	@$(MAKE) --no-print-directory -s LUA=luajit module
	@lua5.4 tools/nginx-conf.lua --port '$(NGINX_PORT)' --api '$(NGINX_API)' \
		--out '$(BUILD)/nginx/nginx.conf' --lua-cpath '$(abspath $(BUILD))/luajit/?.so'

# The README's picture: a few sales on a sandbox with tc, then tc map
# (tools/hall.lua). The same code draws the same bytes; hall_spec checks it.
hall: deps
	@$(MAKE) --no-print-directory -s all
	@LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(MODULE_DIR)/?.so;;' \
		TC_SANDBOX='$(SANDBOX)' $(LUA) tools/hall.lua docs/hall.svg

test:
	@tools/test

# Spec files (or a directory) with the interpreter, paths and builds that
# tools/test gives them: make spec SPEC=spec/money_spec.lua. Plain `busted`
# runs Lua 5.1, where the module was not built. BUSTED_FLAGS="-o TAP" for TAP.
SPEC         ?= spec
BUSTED       ?= /usr/bin/busted
BUSTED_FLAGS ?=

spec: deps
	@$(MAKE) --no-print-directory -s all
	@$(MAKE) --no-print-directory -s LUA=luajit module
	@LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='$(MODULE_DIR)/?.so;;' \
		TC_SANDBOX='$(SANDBOX)' TC_LUAJIT_CPATH='$(BUILD)/luajit/?.so' \
		$(LUA) $(BUSTED) --ignore-lua --lpath='lua/?.lua;lua/?/init.lua;spec/?.lua' \
		--cpath='$(MODULE_DIR)/?.so' $(BUSTED_FLAGS) $(SPEC)

bench: deps
	@$(MAKE) --no-print-directory -s all peers
	@$(MAKE) --no-print-directory -s LUA=luajit module
	@tools/bench

# The bare C peers of the module in bench/peers.lua: a REST client (libcurl
# + cJSON) and a Seats client (gRPC core + protobuf-c, on the code that
# protoc-c generated into $(GEN)). Built for `make bench` only.
PEERS_DIR  = $(BUILD)/peers
PEERS      = $(PEERS_DIR)/rest_get $(PEERS_DIR)/seats
PEER_WARN  = -std=c11 -Wall -Wextra -Werror
PEER_GEN   = $(GEN)/seats.pb-c.o $(GEN)/google/protobuf/timestamp.pb-c.o

peers: $(PEERS)

$(PEERS_DIR)/rest_get: bench/peers/rest_get.c
	@mkdir -p $(dir $@)
	$(CC) $(PEER_WARN) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags libcurl libcjson) $< -o $@ \
		$(shell $(PKG_CONFIG) --libs libcurl libcjson)

$(PEERS_DIR)/seats: bench/peers/seats.c $(PEER_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(PEER_WARN) $(CFLAGS) -I$(GEN) $(shell $(PKG_CONFIG) --cflags grpc libprotobuf-c) \
		$< $(PEER_GEN) -o $@ $(shell $(PKG_CONFIG) --libs grpc libprotobuf-c)

# The chart of the peers' ratios (gnuplot), from the last run's
# $(BUILD)/bench-run/peers-ratios.tsv.
bench-chart:
	@tools/bench-chart $(BUILD)/bench-run/peers-ratios.tsv docs/benchmarks-ratios.png

# bench/nginx.lua alone, with the LuaJIT module nginx loads: a minute more
# than make bench would want, so a target of its own (docs/openresty.md).
bench-nginx: deps
	@$(MAKE) --no-print-directory -s all
	@$(MAKE) --no-print-directory -s LUA=luajit module
	@BENCH_ONLY=nginx TC_LUAJIT_CPATH='$(BUILD)/luajit/?.so' tools/bench

# The chaos run (tools/chaos.lua, docs/benchmarks.md): orders made by
# CHAOS_WORKERS processes at once against a sandbox that injects network
# faults, then checked against everything the sandbox holds.
CHAOS_ORDERS  ?= 10000
CHAOS_WORKERS ?= 4
CHAOS_SEED    ?= 1

chaos: deps
	@$(MAKE) --no-print-directory -s all
	@LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' LUA_CPATH='$(MODULE_DIR)/?.so;;' \
		TC_SANDBOX='$(SANDBOX)' CHAOS_DIR='$(BUILD)/chaos' CHAOS_LUA='$(LUA)' \
		CHAOS_ORDERS='$(CHAOS_ORDERS)' CHAOS_WORKERS='$(CHAOS_WORKERS)' CHAOS_SEED='$(CHAOS_SEED)' \
		$(LUA) tools/chaos.lua

# tc-sandbox against malformed REST requests, trickling connections and
# hostile gRPC calls; answers by status, memory, the inventory afterwards
# (docs/sandbox.md, "Hostile clients"). About 5 minutes on 2 cores.
hostile: deps
	@$(MAKE) --no-print-directory -s all
	@/usr/bin/python3 tools/hostile.py --sandbox $(SANDBOX)

# The API reference, generated by LDoc from the doc comments of the public
# modules (config.ld says which files) into $(BUILD)/docs; it is not
# committed. A warning (an unresolved reference, a parameter that does not
# match the code; on stderr) fails the build; LDoc's progress notes go to
# $(BUILD)/ldoc.log. tools/check-docs, a step of `make test`, also checks
# that every public function has its entry.
LDOC ?= ldoc

docs: deps
	@mkdir -p $(BUILD)
	@$(LDOC) --fatalwarnings --quiet --dir $(BUILD)/docs . > $(BUILD)/ldoc.log
	@echo "API reference: $(BUILD)/docs/index.html"

# The module alone: what the rockspec installs into its tree. It needs only
# the module's own C libraries (no libmicrohttpd, no jansson, no sandbox).
install-module: module
	install -d $(DESTDIR)$(LIBDIR)/ticketscloud $(DESTDIR)$(LUADIR)/ticketscloud
	install -m 0755 $(MODULE) $(DESTDIR)$(LIBDIR)/ticketscloud/core.so
	install -m 0644 lua/ticketscloud/*.lua $(DESTDIR)$(LUADIR)/ticketscloud/

# The module, the tc command, tc-sandbox and the catalog it serves by
# default: an installed PREFIX/bin/tc-sandbox reads
# PREFIX/share/ticketscloud/catalog.json. tc's first line names the
# interpreter the module was built for (the rock's luarocks wraps it itself).
install: all install-module
	install -d $(DESTDIR)$(BINDIR)
	sed '1s|.*|#!/usr/bin/env $(LUA_NAME)|' bin/tc > $(DESTDIR)$(BINDIR)/tc
	chmod 0755 $(DESTDIR)$(BINDIR)/tc
	install -m 0755 $(SANDBOX) $(DESTDIR)$(BINDIR)/tc-sandbox
	install -d $(DESTDIR)$(PREFIX)/share/ticketscloud
	install -m 0644 examples/catalog.json $(DESTDIR)$(PREFIX)/share/ticketscloud/catalog.json

clean:
	rm -rf $(BUILD)
