/*
 * lua_host.c: a minimal Lua 5.4 interpreter for the sanitizer test run.
 *
 * Built with the same -fsanitize flags as the module, it carries the
 * AddressSanitizer runtime itself, so the instrumented core.so loads without
 * LD_PRELOAD (which every child process would inherit: curl, python, the
 * shell). It closes the Lua state at the end, so every __gc runs and
 * LeakSanitizer sees what the module really left behind.
 *
 *   lua-host [-e CHUNK]... [SCRIPT [ARG]...]
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Runs the chunk on top of the stack with nargs arguments above it. */
static int run(lua_State *L, int nargs)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, 0, base);
    lua_remove(L, base);
    return status;
}

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
        return 1;
    }
    luaL_openlibs(L);

    /* Options are -e CHUNK pairs; the first other argument is the script. */
    int script = 1;
    while (script + 1 < argc && strcmp(argv[script], "-e") == 0)
        script += 2;
    int have_script = script < argc;

    /* arg, as lua.c makes it: arg[0] is the script, arg[-1] the interpreter */
    int zero = have_script ? script : 0;
    lua_createtable(L, argc - zero, zero + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - zero);
    }
    lua_setglobal(L, "arg");

    int status = LUA_OK;
    for (int i = 1; status == LUA_OK && i < script; i += 2) {
        status = luaL_loadstring(L, argv[i + 1]);
        if (status == LUA_OK)
            status = run(L, 0);
    }
    if (status == LUA_OK && have_script) {
        status = luaL_loadfile(L, argv[script]);
        if (status == LUA_OK) {
            for (int i = script + 1; i < argc; i++)
                lua_pushstring(L, argv[i]);
            status = run(L, argc - script - 1);
        }
    }
    if (status != LUA_OK)
        fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
