/*
 * hs_heap: analyses of a target's memory (strings, glibc heap, growth).
 *
 * This layer sees only the target interface of hs_core: it must not know
 * whether memory comes from ptrace, a core file or a buffer.
 */
#ifndef HS_HEAP_H
#define HS_HEAP_H

#include "hs_core.h"
#include "hs_strings.h"
#include "hs_glibc.h"
#include "hs_jemalloc.h"
#include "hs_block.h"
#include "hs_show.h"
#include "hs_growth.h"
#include "hs_pprof.h"

#endif
