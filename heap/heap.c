/* hs_heap: module-wide pieces (none yet beyond the analyses' own files). */
#include "hs_heap.h"

const char *hs_heap_layer_name(void);
const char *hs_heap_layer_name(void)
{
	return "heap";
}
