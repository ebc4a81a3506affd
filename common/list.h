/* Intrusive doubly linked lists: the node lives inside its owner, so
 * queueing never allocates. */
#ifndef BASALT_COMMON_LIST_H
#define BASALT_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "assert.h"

struct list_node {
	struct list_node *prev, *next;
};

static inline void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

/* A node that is on no list points at itself after list_init/list_del. */
static inline bool list_linked(const struct list_node *node)
{
	return node->next != node && node->next != NULL;
}

static inline void list_insert_between(struct list_node *node,
				       struct list_node *prev,
				       struct list_node *next)
{
	node->prev = prev;
	node->next = next;
	prev->next = node;
	next->prev = node;
}

static inline void list_add_tail(struct list_node *head, struct list_node *node)
{
	list_insert_between(node, head->prev, head);
}

static inline void list_add_head(struct list_node *head, struct list_node *node)
{
	list_insert_between(node, head, head->next);
}

static inline void list_del(struct list_node *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

static inline struct list_node *list_first(const struct list_node *head)
{
	return list_empty(head) ? NULL : head->next;
}

#define list_entry(node, type, member) BASALT_CONTAINER_OF(node, type, member)

#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#define list_for_each_safe(pos, tmp, head)                                     \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);       \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
