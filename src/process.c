/*
 * process.c: which process is running, without a system call each time.
 *
 * A client's libcurl handle and gRPC channel belong to the process that made
 * them (http.c and grpc.c, "Fork"): in a child made by fork() they must be
 * refused, not shared. Each of them remembers the pid of its maker and
 * compares it with the current one on every request and every streamed
 * message. getpid() is a system call (glibc has not cached it since 2.25),
 * one per message of a 100,000-seat stream, so the current pid is kept here
 * instead and brought up to date in the child by a pthread_atfork handler.
 *
 * This is the one piece of process-wide mutable state of the core: the pid
 * is a fact about the process, not about any one Lua state or client, and
 * every state of the process shares it. It is written twice at most per
 * process: once by pthread_once (the handler is registered at the same time,
 * before any fork the module can see), and by the handler, in a child, where
 * the forking thread is the only thread. glibc unregisters the handler when
 * the module is unloaded (dlclose runs __cxa_finalize for it).
 *
 * The handler runs for fork() and for everything built on it (LuaJIT's FFI,
 * os.execute's posix_spawn children exec at once and never run the core).
 * A child made by a raw clone(2) or _Fork() without it would keep the
 * parent's pid here: such a child must not use a client either way.
 */
#include "private.h"

#include <pthread.h>
#include <unistd.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pid_t current;

static void in_child(void)
{
    current = getpid();
}

static void init(void)
{
    current = getpid();
    pthread_atfork(NULL, NULL, in_child);
}

pid_t tc_pid(void)
{
    pthread_once(&once, init);
    return current;
}
