/* SPDX-License-Identifier: BSD-3-Clause */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int notify_open(struct notify *n)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	n->fd = -1;
	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr.sun_path)) {
		log_err("NOTIFY_SOCKET: '%s' is not a unix socket path", path);
		return -1;
	}
	memset(&n->addr, 0, sizeof(n->addr));
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0';
	n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0) {
		log_errno(LOG_ERR, errno, "NOTIFY_SOCKET: socket");
		return -1;
	}
	return 0;
}

void notify_send(struct notify *n, const char *state)
{
	if (n->fd < 0)
		return;
	if (sendto(n->fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addr_len) < 0)
		log_errno(LOG_WARNING, errno, "NOTIFY_SOCKET: %s", state);
}

void notify_close(struct notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
