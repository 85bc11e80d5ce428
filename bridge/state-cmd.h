/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef VTPM_STATE_CMD_H
#define VTPM_STATE_CMD_H

/* `vtpm-bridge state ...`: argv[0] is "state".  Returns the exit status. */
int state_cmd_main(int argc, char **argv);

#endif
