/* basalt-docker's endpoints (see driver.h). Each handler takes the
 * request's JSON object and returns the reply; a refusal is {"Err": why},
 * logged with the call it answers. */
#include "driver.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/size.h"
#include "state.h"

#define DK_VOLUME_SIZE_MAX (1ULL << 60) /* as basalt volume create */

static json_t *err_reply(const char *call, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static json_t *err_reply(const char *call, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOG_WARN("%s: %s", call, msg);
	return json_pack("{s:s}", "Err", msg);
}

static json_t *ok_reply(void)
{
	return json_pack("{s:s}", "Err", "");
}

/* A volume name Docker and Basalt both take, safe in a path: letters,
 * digits, '_', '.', '-', starting with a letter or digit. */
static bool name_ok(const char *name)
{
	if (!name || !isalnum((unsigned char)*name) || strlen(name) >= MAP_NAME_MAX)
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("_.-", *c))
			return false;
	return true;
}

/* REQ's "Name", checked: NULL after filling *ERR. */
static const char *req_name(const char *call, json_t *req, json_t **err)
{
	const char *name = json_string_value(json_object_get(req, "Name"));
	if (!name)
		*err = err_reply(call, "the request has no \"Name\" string");
	else if (!name_ok(name))
		*err = err_reply(call, "bad volume name '%.80s': use letters, digits, '_', '.' and "
				       "'-', starting with a letter or digit, at most %d characters",
				 name, MAP_NAME_MAX - 1);
	else
		return name;
	return NULL;
}

static json_t *mounts(struct dk_driver *d)
{
	return json_object_get(d->state, "mounts");
}

static const char *mountpoint_of(struct dk_driver *d, const char *name)
{
	return json_string_value(json_object_get(json_object_get(mounts(d), name), "mountpoint"));
}

static void save(struct dk_driver *d)
{
	char why[512];
	if (dk_state_save(d->state_dir, d->state, why, sizeof(why)))
		LOG_ERROR("%s (a restarted plugin will not know this node's mounts)", why);
}

/* --- Plugin.Activate, Capabilities --------------------------------------------- */

static json_t *h_activate(struct dk_driver *d, json_t *req)
{
	(void)d, (void)req;
	return json_pack("{s:[s]}", "Implements", "VolumeDriver");
}

static json_t *h_capabilities(struct dk_driver *d, json_t *req)
{
	(void)d, (void)req;
	/* Every node sees the same volumes: Docker asks the cluster once. */
	return json_pack("{s:{s:s}}", "Capabilities", "Scope", "global");
}

/* --- Create, Remove ------------------------------------------------------------- */

/* OPTS of a Create into SIZE, POOL and FS: NULL, or the refusal. */
static json_t *create_opts(struct dk_driver *d, json_t *opts, uint64_t *size, const char **pool,
			   const char **fs)
{
	const char *key;
	json_t *val;
	*size = d->default_size;
	*pool = d->default_pool;
	*fs = NULL;
	if (opts && !json_is_object(opts) && !json_is_null(opts))
		return err_reply("create", "\"Opts\" must be an object of strings");
	json_object_foreach(opts, key, val) {
		const char *text = json_string_value(val);
		char why[512];
		if (!text)
			return err_reply("create", "option %s: the value must be a string", key);
		if (!strcmp(key, "size")) {
			if (size_parse_range(text, "size", 1, DK_VOLUME_SIZE_MAX, size, why, sizeof(why)))
				return err_reply("create", "%s", why);
		} else if (!strcmp(key, "pool")) {
			*pool = text;
		} else if (!strcmp(key, "fs")) {
			if (strcmp(text, "ext4") && strcmp(text, "xfs"))
				return err_reply("create", "option fs=%.40s: basalt-docker makes ext4 "
							   "or xfs", text);
			*fs = text;
		} else {
			return err_reply("create", "unknown option '%.60s' (basalt-docker takes size, "
						   "pool and fs)", key);
		}
	}
	return NULL;
}

static json_t *h_create(struct dk_driver *d, json_t *req)
{
	json_t *err = NULL;
	const char *name = req_name("create", req, &err), *pool, *fs;
	uint64_t size;
	if (!name || (err = create_opts(d, json_object_get(req, "Opts"), &size, &pool, &fs)))
		return err;
	char why[1024];
	struct dk_volume_info info;
	int rc = dk_cluster_volume(d->cluster, name, &info, why, sizeof(why));
	if (rc == 0) {
		LOG_INFO("create %s: a Basalt volume of that name exists (%" PRIu64 " bytes in pool "
			 "%s): adopting it, not creating one", name, info.size, info.pool);
	} else if (rc == -ENOENT) {
		if ((rc = dk_cluster_create(d->cluster, name, pool, size, why, sizeof(why))))
			return err_reply("create", "cannot create volume %s (%" PRIu64 " bytes in pool "
						   "%s): %s", name, size, pool, why);
		LOG_INFO("create %s: created a Basalt volume of %" PRIu64 " bytes in pool %s", name,
			 size, pool);
	} else {
		return err_reply("create", "volume %s: %s", name, why);
	}
	if (fs) {
		json_object_set_new(json_object_get(d->state, "fs"), name, json_string(fs));
		save(d);
	}
	return ok_reply();
}

static json_t *h_remove(struct dk_driver *d, json_t *req)
{
	json_t *err = NULL;
	const char *name = req_name("remove", req, &err);
	if (!name)
		return err;
	json_t *m = json_object_get(mounts(d), name);
	if (m)
		return err_reply("remove", "volume %s is mounted on this node (%zu containers use it)",
				 name, json_array_size(json_object_get(m, "ids")));
	char why[1024];
	struct dk_volume_info info;
	int rc = dk_cluster_volume(d->cluster, name, &info, why, sizeof(why));
	if (!rc && *info.holder)
		return err_reply("remove", "volume %s is in use: locked by %s", name, info.holder);
	uint64_t freed = 0;
	if (!rc)
		rc = dk_cluster_remove(d->cluster, name, &freed, why, sizeof(why));
	if (rc)
		return err_reply("remove", "cannot remove volume %s: %s", name, why);
	LOG_INFO("remove %s: removed; %" PRIu64 " bytes freed", name, freed);
	if (json_object_del(json_object_get(d->state, "fs"), name) == 0)
		save(d);
	return ok_reply();
}

/* --- Mount, Unmount ------------------------------------------------------------- */

/* REQ's "ID" (the container's), checked: NULL after filling *ERR. */
static const char *req_id(const char *call, json_t *req, json_t **err)
{
	const char *id = json_string_value(json_object_get(req, "ID"));
	if (!id || !*id || strlen(id) > 256)
		*err = err_reply(call, "the request has no \"ID\" string (the container's)");
	return id && *id && strlen(id) <= 256 ? id : NULL;
}

static ssize_t id_index(json_t *ids, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
		if (!strcmp(json_string_value(v), id))
			return (ssize_t)i;
	return -1;
}

static int volume_has_data(void *ctx, const char *name, bool *has_data, char *why,
			   size_t why_len)
{
	struct dk_driver *d = ctx;
	return dk_cluster_has_data(d->cluster, name, has_data, why, why_len);
}

/* Attaches volume NAME for its first user here: the reply. */
static json_t *mount_first(struct dk_driver *d, const char *name, const char *id)
{
	char why[1024];
	struct dk_volume_info info;
	if (dk_cluster_volume(d->cluster, name, &info, why, sizeof(why)))
		return err_reply("mount", "volume %s: %s", name, why);
	struct dk_attach_params ap = d->ap;
	const char *fs = json_string_value(json_object_get(json_object_get(d->state, "fs"), name));
	if (fs)
		ap.mkfs_type = fs;
	ap.has_data = volume_has_data;
	ap.ctx = d;
	struct dk_attach a;
	bool formatted;
	int rc = dk_attach(&ap, name, &a, &formatted, why, sizeof(why));
	if (rc == -EBUSY) {
		dk_cluster_volume(d->cluster, name, &info, why, sizeof(why));
		return err_reply("mount", "volume %s is locked by %s (waited %.0f s for its lease to "
					  "run out; basalt-docker --takeover break takes it over, "
					  "fencing the holder)", name, *info.holder ? info.holder : "another client",
				 (double)ap.wait_ms / 1000);
	}
	if (rc)
		return err_reply("mount", "%s", why);
	json_object_set_new(mounts(d), name, dk_state_mount_new(&a, json_pack("[s]", id)));
	json_object_del(json_object_get(d->state, "fs"), name);
	save(d);
	if (formatted)
		metrics_counter_add(d->metrics.formats, 1);
	LOG_INFO("mount %s: %s%s on %s (%s, basalt-fuse pid %d) for container %s", name,
		 formatted ? "formatted, " : "", a.fs_type, a.mountpoint, a.loop_dev, (int)a.fuse_pid,
		 id);
	return json_pack("{s:s, s:s}", "Mountpoint", a.mountpoint, "Err", "");
}

static json_t *h_mount(struct dk_driver *d, json_t *req)
{
	json_t *err = NULL;
	const char *name = req_name("mount", req, &err), *id;
	if (!name || !(id = req_id("mount", req, &err)))
		return err;
	json_t *m = json_object_get(mounts(d), name);
	if (!m)
		return mount_first(d, name, id);
	json_t *ids = json_object_get(m, "ids");
	if (id_index(ids, id) < 0) {
		json_array_append_new(ids, json_string(id));
		save(d);
	}
	LOG_INFO("mount %s: already mounted here; container %s is user %zu", name, id,
		 json_array_size(ids));
	return json_pack("{s:s, s:s}", "Mountpoint", mountpoint_of(d, name), "Err", "");
}

static json_t *h_unmount(struct dk_driver *d, json_t *req)
{
	json_t *err = NULL;
	const char *name = req_name("unmount", req, &err), *id;
	if (!name || !(id = req_id("unmount", req, &err)))
		return err;
	json_t *m = json_object_get(mounts(d), name);
	if (!m)
		return err_reply("unmount", "volume %s is not mounted on this node", name);
	json_t *ids = json_object_get(m, "ids");
	ssize_t i = id_index(ids, id);
	if (i < 0)
		return err_reply("unmount", "volume %s is not mounted for container %s", name, id);
	if (json_array_size(ids) > 1) {
		json_array_remove(ids, (size_t)i);
		save(d);
		LOG_INFO("unmount %s: container %s done; %zu still use it", name, id,
			 json_array_size(ids));
		return ok_reply();
	}
	struct dk_attach a;
	char why[1024];
	if (dk_state_mount_attach(m, &a))
		return err_reply("unmount", "volume %s: its state record is damaged", name);
	if (dk_detach(&a, why, sizeof(why)))
		return err_reply("unmount", "volume %s: %s", name, why);
	json_object_del(mounts(d), name);
	save(d);
	LOG_INFO("unmount %s: last user %s gone: unmounted, lock given back", name, id);
	return ok_reply();
}

/* --- Path, Get, List ------------------------------------------------------------ */

static json_t *h_path(struct dk_driver *d, json_t *req)
{
	json_t *err = NULL;
	const char *name = req_name("path", req, &err);
	if (!name)
		return err;
	const char *mp = mountpoint_of(d, name);
	return json_pack("{s:s, s:s}", "Mountpoint", mp ? mp : "", "Err", "");
}

static json_t *h_get(struct dk_driver *d, json_t *req)
{
	json_t *err = NULL;
	const char *name = req_name("get", req, &err);
	if (!name)
		return err;
	char why[1024];
	struct dk_volume_info info;
	int rc = dk_cluster_volume(d->cluster, name, &info, why, sizeof(why));
	if (rc) /* -ENOENT is how Docker learns that the volume is not ours */
		return rc == -ENOENT ? json_pack("{s:s}", "Err", why) : err_reply("get", "%s", why);
	const char *mp = mountpoint_of(d, name);
	json_t *ids = json_object_get(json_object_get(mounts(d), name), "ids");
	json_t *status = json_pack("{s:I, s:s, s:s, s:I}", "size", (json_int_t)info.size, "pool",
				   info.pool, "lock_holder", info.holder, "users_here",
				   (json_int_t)json_array_size(ids));
	json_t *vol = json_pack("{s:s, s:o}", "Name", name, "Status", status);
	if (mp)
		json_object_set_new(vol, "Mountpoint", json_string(mp));
	return json_pack("{s:o, s:s}", "Volume", vol, "Err", "");
}

static json_t *h_list(struct dk_driver *d, json_t *req)
{
	(void)req;
	char **names, why[1024];
	size_t n;
	if (dk_cluster_volume_names(d->cluster, &names, &n, why, sizeof(why)))
		return err_reply("list", "%s", why);
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *mp = mountpoint_of(d, names[i]);
		json_t *vol = json_pack("{s:s}", "Name", names[i]);
		if (mp)
			json_object_set_new(vol, "Mountpoint", json_string(mp));
		json_array_append_new(list, vol);
		free(names[i]);
	}
	free(names);
	return json_pack("{s:o, s:s}", "Volumes", list, "Err", "");
}

/* --- dispatch ------------------------------------------------------------------- */

static const struct {
	const char *path;
	json_t *(*fn)(struct dk_driver *d, json_t *req);
} calls[DK_CALLS] = {
	{ "/Plugin.Activate", h_activate },
	{ "/VolumeDriver.Capabilities", h_capabilities },
	{ "/VolumeDriver.Create", h_create },
	{ "/VolumeDriver.Remove", h_remove },
	{ "/VolumeDriver.Mount", h_mount },
	{ "/VolumeDriver.Unmount", h_unmount },
	{ "/VolumeDriver.Path", h_path },
	{ "/VolumeDriver.Get", h_get },
	{ "/VolumeDriver.List", h_list },
};

/* Call I answered with REPLY after NS: counted, timed, and what is
 * mounted here now. */
static void metrics_count(struct dk_driver *d, size_t i, json_t *reply, uint64_t ns)
{
	struct dk_metrics *m = &d->metrics;
	const char *err = json_string_value(json_object_get(reply, "Err"));
	metrics_counter_add(m->calls[i], 1);
	metrics_histogram_observe_ns(m->latency[i], ns);
	if (!reply || (err && *err))
		metrics_counter_add(m->errors[i], 1);
	const char *name;
	json_t *mount;
	size_t users = 0;
	json_object_foreach(mounts(d), name, mount)
		users += json_array_size(json_object_get(mount, "ids"));
	metrics_gauge_set(m->mounted, (int64_t)json_object_size(mounts(d)));
	metrics_gauge_set(m->containers, (int64_t)users);
}

static int metrics_register(struct dk_metrics *m)
{
	static const char *const kinds[DK_CALLS] = {
		"activate", "capabilities", "create", "remove", "mount",
		"unmount",  "path",	    "get",    "list",
	};
	if (metrics_registry_create(&m->registry))
		return -ENOMEM;
	metrics_op_kinds(m->registry, "basalt_docker_request", "Docker's calls to the plugin",
			 "Calls answered with an error (Err)", "Time to answer a call", kinds,
			 DK_CALLS, m->calls, m->errors, m->latency);
	m->mounted = metrics_single(m->registry, METRICS_GAUGE, "basalt_docker_volumes_mounted",
				    "Basalt volumes this node has mounted for containers");
	m->containers = metrics_single(m->registry, METRICS_GAUGE, "basalt_docker_volume_users",
				       "Container mounts of those volumes (one per container ID)");
	m->formats = metrics_single(m->registry, METRICS_COUNTER, "basalt_docker_formats_total",
				    "Volumes given a filesystem at their first mount");
	return metrics_registry_error(m->registry);
}

json_t *dk_driver_call(struct dk_driver *d, const char *path, json_t *req, unsigned *status)
{
	*status = 200;
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		if (strcmp(path, calls[i].path))
			continue;
		LOG_DEBUG("%s", path);
		uint64_t start_ns = dk_now_ns();
		char why[1024];
		json_t *reply;
		if (i >= 2 && dk_cluster_begin(d->cluster, why, sizeof(why))) {
			reply = err_reply(path + 1, "cannot reach the cluster: %s", why);
		} else {
			reply = calls[i].fn(d, req);
			dk_cluster_end(d->cluster);
		}
		metrics_count(d, i, reply, dk_now_ns() - start_ns);
		return reply;
	}
	*status = 404;
	return err_reply("request", "no such call %.100s (this is a Docker volume plugin: "
				    "/Plugin.Activate, /VolumeDriver.*)", path);
}

int dk_driver_start(struct dk_driver *d, char *why, size_t why_len)
{
	if (metrics_register(&d->metrics)) {
		snprintf(why, why_len, "out of memory for metrics");
		return -ENOMEM;
	}
	int rc = dk_state_load(d->state_dir, &d->state, why, why_len);
	if (rc)
		return rc;
	const char *name;
	json_t *m, *tmp;
	bool changed = false;
	json_object_foreach_safe(mounts(d), tmp, name, m) {
		struct dk_attach a;
		if (!dk_state_mount_attach(m, &a) && dk_attach_alive(&a)) {
			LOG_INFO("volume %s: still mounted on %s for %zu containers (basalt-fuse pid %d)",
				 name, a.mountpoint, json_array_size(json_object_get(m, "ids")),
				 (int)a.fuse_pid);
			continue;
		}
		LOG_WARN("volume %s: its mount on %s is gone (the node restarted?): forgetting it",
			 name, a.mountpoint);
		dk_detach(&a, why, why_len);
		json_object_del(mounts(d), name);
		changed = true;
	}
	if (changed)
		save(d);
	return 0;
}

void dk_driver_stop(struct dk_driver *d)
{
	json_decref(d->state);
	d->state = NULL;
	metrics_registry_free(d->metrics.registry);
	d->metrics.registry = NULL;
}
