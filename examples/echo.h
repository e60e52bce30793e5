/*
 * An echo server whose connections are spread across IOThreads: the main
 * loop accepts, and hands each new socket to the next IOThread (round
 * robin) with a BH; from then on the connection lives in that thread only.
 *
 * Every function: main loop thread.
 */
#ifndef DATAPLANE_EXAMPLES_ECHO_H
#define DATAPLANE_EXAMPLES_ECHO_H

#include <stdbool.h>

#include <dataplane/error.h>

typedef struct EchoServer EchoServer;

/*
 * Serves the listening socket listen_fd (it becomes the server's, and is
 * made non-blocking) with n_iothreads IOThreads named echo0, echo1, ...
 * On failure (NULL and errp) listen_fd stays the caller's.
 */
EchoServer *echo_server_new(int listen_fd, int n_iothreads, Error **errp);
/* Closes the listening socket and every connection, stops the IOThreads. */
void echo_server_free(EchoServer *server);
/* How many connections were handed to IOThread i so far. */
unsigned echo_server_get_accepted(EchoServer *server, int i);

#endif /* DATAPLANE_EXAMPLES_ECHO_H */
