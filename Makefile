# lua-ticketscloud: the module (ticketscloud/core.so + lua/) and tc-sandbox.
#
#   make                  module for Lua 5.4 and the sandbox
#   make module           the module alone (what the rockspec builds)
#   make install          module, tc-sandbox and its catalog under PREFIX
#   make install-module   the module alone, into LUADIR and LIBDIR (luarocks)
#   make LUA=luajit       the same module for LuaJIT 2.1 (OpenResty)
#   make demo             the order example's two mixed orders against the sandbox
#   make test             every check CI runs
#   make spec SPEC=spec/money_spec.lua   one spec (or several), as make test runs it
#   make bench            benchmarks, with the peers beside the module
#   make peers            the bare C peers of the benchmarks (build/peers)
#   make bench-chart      docs/benchmarks-ratios.png from the last make bench
#   make chaos            orders under network faults: none lost, duplicated or orphaned
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
SANFLAGS    = $(if $(SAN),$(SANITIZE))

MODULE_PKGS  = libcurl grpc libprotobuf-c yajl
SANDBOX_PKGS = grpc libprotobuf-c libmicrohttpd jansson

GEN        = $(BUILD)/gen
PROTOS     = $(sort $(wildcard proto/*.proto))
WKT        = google/protobuf/timestamp.proto google/protobuf/any.proto
GEN_SRCS   = $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS)) \
             $(patsubst %.proto,$(GEN)/%.pb-c.c,$(WKT))
GEN_OBJS   = $(GEN_SRCS:.c=.o)

MODULE_DIR  = $(BUILD)/$(LUA_NAME)
MODULE      = $(MODULE_DIR)/ticketscloud/core.so
MODULE_SRCS = $(sort $(wildcard src/*.c))
MODULE_OBJS = $(patsubst src/%.c,$(MODULE_DIR)/obj/%.o,$(MODULE_SRCS))

SANDBOX      = $(BUILD)/tc-sandbox
SANDBOX_SRCS = $(sort $(wildcard src/sandbox/*.c))
# bytes.c holds the UTF-8, id and key rules that the module and the sandbox share.
SANDBOX_OBJS = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SANDBOX_SRCS)) $(BUILD)/obj/bytes.o

.PHONY: all module sandbox host deps demo test spec bench bench-chart peers chaos install \
        install-module clean

# Where `make install` puts things; luarocks sets LUADIR and LIBDIR itself.
PREFIX     ?= /usr/local
LUA_VER    ?= $(if $(filter luajit,$(LUA_NAME)),5.1,$(patsubst lua%,%,$(LUA_NAME)))
LUADIR     ?= $(PREFIX)/share/lua/$(LUA_VER)
LIBDIR     ?= $(PREFIX)/lib/lua/$(LUA_VER)
BINDIR     ?= $(PREFIX)/bin
.SECONDARY: $(GEN_SRCS)

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

$(BUILD)/obj/sandbox/%.o: src/sandbox/%.c $(wildcard src/sandbox/*.h) $(GEN)/.stamp
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

# The module alone: what the rockspec installs into its tree. It needs only
# the module's own C libraries (no libmicrohttpd, no jansson, no sandbox).
install-module: module
	install -d $(DESTDIR)$(LIBDIR)/ticketscloud $(DESTDIR)$(LUADIR)/ticketscloud
	install -m 0755 $(MODULE) $(DESTDIR)$(LIBDIR)/ticketscloud/core.so
	install -m 0644 lua/ticketscloud/*.lua $(DESTDIR)$(LUADIR)/ticketscloud/

# The module, tc-sandbox and the catalog it serves by default: an installed
# PREFIX/bin/tc-sandbox reads PREFIX/share/ticketscloud/catalog.json.
install: all install-module
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(SANDBOX) $(DESTDIR)$(BINDIR)/tc-sandbox
	install -d $(DESTDIR)$(PREFIX)/share/ticketscloud
	install -m 0644 examples/catalog.json $(DESTDIR)$(PREFIX)/share/ticketscloud/catalog.json

clean:
	rm -rf $(BUILD)
