/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * systemd's readiness protocol (sd_notify(3), Type=notify): one datagram
 * to the unix socket $NOTIFY_SOCKET names ("@" for the abstract space).
 * Our own few lines rather than libsystemd: the socket is opened at
 * start, before --runas and the seccomp filter, and only sendto() is
 * left for later.
 */
#ifndef VTPM_NOTIFY_H
#define VTPM_NOTIFY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

struct notify {
	int fd;			/* -1: no $NOTIFY_SOCKET, nothing is sent */
	struct sockaddr_un addr;
	socklen_t addr_len;
};

/* Reads $NOTIFY_SOCKET and opens the socket: 0 (also without one), or -1 after logging why. */
int notify_open(struct notify *n);

/* Sends one state message ("READY=1", "STOPPING=1"); failures are logged, not fatal. */
void notify_send(struct notify *n, const char *state);

void notify_close(struct notify *n);

#endif
