/* The public headers compile alone under strict ISO C (see CMakeLists). */
#include "kgstore.h"
#include "kgstore/backend.h"
int kg_header_check_anchor(void);
int kg_header_check_anchor(void) { kg_relation r = KG_RELATION_INIT; return r.weight == 1.0 ? 0 : 1; }
