/*
 * Which symbols libdataplane exports.
 *
 * The library is compiled with -fvisibility=hidden: a function is exported
 * from libdataplane.so only if an installed header (include/dataplane/)
 * declares it between DP_API_BEGIN and DP_API_END.  Everything else, the
 * internal headers of aio/, block/, nbd/, io/, util/ and their functions
 * (aio_bh_poll, dp_mutex_lock, ...), stays inside the library: programs
 * can neither call it nor come to depend on it.  Every installed header
 * wraps its declarations so, after its own #includes; tests/install checks
 * that the shared library exports nothing else.
 *
 * The static archive (libdataplane.a) cannot hide anything: link against it
 * and use only what the installed headers declare all the same.
 */
#ifndef DATAPLANE_VISIBILITY_H
#define DATAPLANE_VISIBILITY_H

#if defined(__GNUC__) || defined(__clang__)
#define DP_API_BEGIN _Pragma("GCC visibility push(default)")
#define DP_API_END _Pragma("GCC visibility pop")
#else
#define DP_API_BEGIN
#define DP_API_END
#endif

#endif /* DATAPLANE_VISIBILITY_H */
