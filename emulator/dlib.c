/* SPDX-License-Identifier: BSD-3-Clause */
#include "dlib.h"

#include <dlfcn.h>

#include "log.h"

void *dlib_load(const char *lib, const struct dlib_sym *syms, size_t n)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		log_err("cannot load %s: %s", lib, dlerror());
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			log_err("%s lacks %s", lib, syms[i].name);
			dlclose(h);
			return NULL;
		}
	}
	return h;
}
