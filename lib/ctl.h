/*
 * ctl.h: eimzactl's requests and their execution.
 *
 * A request is one JSON object {"cmd": ..., arguments}; the answer is one
 * JSON object {"ok": bool, "code": <sysexits code>, "error": text?, ...}.
 * The same ctl_execute() runs inside the daemon (requests arrive over the
 * control socket, one JSON line each way) and inside eimzactl when no
 * daemon is running (then eimzactl holds the store's lock for the command).
 *
 * Commands (arguments):
 *   list     state?, unit?, overdue?            -> apps[]
 *   show     id                                  -> app, notices[]
 *   status                                       -> states{}, overdue, outbox{}, source{}, kinds{}
 *   outbox   filter? ("pending", "dead", "sent", "all")  -> notices[]
 *   approve  id            reject id, reason     mark id, step     cancel id
 *   import   rows[] (applicant fields + state?, since?, row)
 *   edit     id, field, value
 *   resend   id, notice (a notice id or kind)
 *   purge    dry_run?
 * Changing commands carry "user" (the Unix user, set by the transport:
 * SO_PEERCRED on the socket, getuid() in-process); each is applied in one
 * transaction, recorded in the applications' history as "cli:<user>", and
 * appended to <state_dir>/audit.log.
 *
 * Ownership: ctl_execute returns a new object (json_object_put it).
 */
#ifndef EIMZA_CTL_H
#define EIMZA_CTL_H

#include "eimzad.h"

json_object *ctl_execute(struct eimzad *ez, json_object *req, const char *user);
bool ctl_is_change(const char *cmd);

/* The socket side (daemon). */
int ctl_listen(const char *path, char **err);
/* Accept one client on the listening fd and answer its request (bounded
 * by a few seconds; a slow or broken client is dropped). */
void ctl_serve(struct eimzad *ez, int listen_fd);

/* The client side (eimzactl). Returns the answer, or NULL with *err and
 * *unreachable set when no daemon listens there. */
json_object *ctl_call(const char *path, json_object *req, bool *unreachable, char **err);

/* Default socket path for a configuration. */
char *ctl_socket_path(const struct config *c);

#endif
