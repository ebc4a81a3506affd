/* basalt-docker's persisted state (see state.h): JSON through jansson,
 * replaced atomically so a crash leaves the old file or the new one. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DK_STATE_VERSION 1

int dk_state_load(const char *dir, json_t **out, char *why, size_t why_len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/state.json", dir);
	if (access(path, F_OK)) {
		*out = json_pack("{s:i, s:{}, s:{}}", "version", DK_STATE_VERSION, "mounts", "fs");
		return *out ? 0 : -ENOMEM;
	}
	json_error_t err;
	json_t *s = json_load_file(path, 0, &err);
	if (!s || !json_is_object(json_object_get(s, "mounts")) ||
	    !json_is_object(json_object_get(s, "fs")) ||
	    json_integer_value(json_object_get(s, "version")) != DK_STATE_VERSION) {
		snprintf(why, why_len, "%s is not basalt-docker's state (version %d): %s", path,
			 DK_STATE_VERSION, s ? "fields missing" : err.text);
		json_decref(s);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

int dk_state_save(const char *dir, json_t *state, char *why, size_t why_len)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/state.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -errno : 0;
	if (!rc && json_dumpfd(state, fd, JSON_INDENT(1) | JSON_SORT_KEYS))
		rc = -EIO;
	if (!rc && fsync(fd))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		snprintf(why, why_len, "cannot write %s: %s", path, strerror(-rc));
	return rc;
}

json_t *dk_state_mount_new(const struct dk_attach *a, json_t *ids)
{
	return json_pack("{s:o, s:i, s:s, s:s, s:s, s:s}", "ids", ids, "fuse_pid", (int)a->fuse_pid,
			 "loop_dev", a->loop_dev, "fs_type", a->fs_type, "fuse_dir", a->fuse_dir,
			 "mountpoint", a->mountpoint);
}

int dk_state_mount_attach(json_t *mount, struct dk_attach *a)
{
	int pid = 0;
	const char *loop = NULL, *fs = NULL, *fuse_dir = NULL, *mnt = NULL;
	if (json_unpack(mount, "{s:i, s:s, s:s, s:s, s:s}", "fuse_pid", &pid, "loop_dev", &loop,
			"fs_type", &fs, "fuse_dir", &fuse_dir, "mountpoint", &mnt))
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->fuse_pid = pid;
	snprintf(a->loop_dev, sizeof(a->loop_dev), "%s", loop);
	snprintf(a->fs_type, sizeof(a->fs_type), "%s", fs);
	snprintf(a->fuse_dir, sizeof(a->fuse_dir), "%s", fuse_dir);
	snprintf(a->mountpoint, sizeof(a->mountpoint), "%s", mnt);
	return 0;
}
