/* SPDX-License-Identifier: BSD-3-Clause */
#include "file-replace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int file_replace(const char *path, const void *buf, size_t len, mode_t mode, bool exact_mode)
{
	char tmp[PATH_MAX];
	int fd, n, err = 0;

	n = snprintf(tmp, sizeof(tmp), "%s.%d~", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if ((exact_mode && fchmod(fd, mode) < 0) || write(fd, buf, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	if (close(fd) < 0 && !err)
		err = errno;
	if (!err && rename(tmp, path) < 0)
		err = errno;
	if (err)
		unlink(tmp);
	return -err;
}
