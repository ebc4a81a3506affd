/* A pool's listing for snapshot arithmetic (see snap_list.h). */
#include "client/snap_list.h"

#include <errno.h>
#include <stdlib.h>

static int inode_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int bs_snap_list_found(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	struct bs_snap_list *l = arg;
	if (!bsearch(&oid->inode, l->inodes, l->n_inodes, sizeof(*l->inodes), inode_cmp))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct bs_snap_entry *e = realloc(l->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	l->e[l->n++] = (struct bs_snap_entry){ .inode = oid->inode, .index = oid->index,
					       .version = version, .size = size,
					       .snap = oid->snap };
	return 0;
}

static int snap_entry_cmp(const void *a, const void *b)
{
	const struct bs_snap_entry *x = a, *y = b;
	if (x->inode != y->inode)
		return x->inode < y->inode ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->snap != y->snap)
		return x->snap < y->snap ? -1 : 1;
	return x->version > y->version ? -1 : x->version < y->version; /* newest first */
}

static bool snap_entry_same_id(const struct bs_snap_entry *x, const struct bs_snap_entry *y)
{
	return x->inode == y->inode && x->index == y->index && x->snap == y->snap;
}

void bs_snap_list_sort(struct bs_snap_list *l)
{
	if (!l->n)
		return;
	qsort(l->e, l->n, sizeof(*l->e), snap_entry_cmp);
	size_t kept = 1;
	for (size_t i = 1; i < l->n; i++)
		if (!snap_entry_same_id(&l->e[kept - 1], &l->e[i]))
			l->e[kept++] = l->e[i];
	l->n = kept;
}

size_t bs_snap_list_object(const struct bs_snap_entry *e, size_t n)
{
	size_t j = 1;
	while (j < n && e[j].inode == e[0].inode && e[j].index == e[0].index)
		j++;
	return n ? j : 0;
}

long bs_snap_list_resolve(const struct bs_snap_entry *e, size_t n, const struct map_snap *s)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].snap >= s->id)
			return map_snap_predates(s, e[i].version) ? (long)i : -1;
	if (n && e[0].snap == OBJECT_SNAP_HEAD && map_snap_predates(s, e[0].version))
		return 0;
	return -1;
}

long bs_snap_list_resolve_head(const struct bs_snap_entry *e, size_t n)
{
	return n && e[0].snap == OBJECT_SNAP_HEAD ? 0 : -1;
}
