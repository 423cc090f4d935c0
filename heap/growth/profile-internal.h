/* Private helpers shared by heap/growth/: profile*.c, growth.c, pprof.c. */
#ifndef HS_PROFILE_INTERNAL_H
#define HS_PROFILE_INTERNAL_H

#include "hs_growth.h"

/* Replaces an owned string field with a copy of s (NULL: ""). */
void hs_profile_set_str(char **field, const char *s);
/* Append a zeroed record; the pointer is valid until the next add. */
struct hs_profile_region *hs_profile_add_region(struct hs_profile *p);
struct hs_profile_arena *hs_profile_add_arena(struct hs_profile *p);
struct hs_profile_chunk *hs_profile_add_chunk(struct hs_profile *p);
struct hs_profile_string *hs_profile_add_string(struct hs_profile *p);
struct hs_profile_type *hs_profile_add_type(struct hs_profile *p);
/* Orders types by (kind, name); finish sorts and merges duplicates. */
int hs_profile_type_cmp(const void *x, const void *y);
void hs_profile_types_finish(struct hs_profile *p);

#endif
