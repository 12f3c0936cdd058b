/* The README's quick start: built against an installed kgstore with
 * cc quickstart.c $(pkg-config --cflags --libs kgstore) (tests/install_test.sh). */
#include <kgstore.h>
#include <stdio.h>

int main(void)
{
	kg_store *store = NULL;
	if (kg_open("memory:", &store) != KG_OK) {   /* or "sqlite:graph.db", "postgresql://..." */
		fprintf(stderr, "open: %s\n", kg_errmsg(store));
		kg_close(store);
		return 1;
	}
	kg_entity alice = { .id = "alice", .entity_type = "Person",
	                    .properties = "{\"name\": \"Alice\"}" };
	kg_entity acme = { .id = "acme", .entity_type = "Company", .properties = "{}" };
	kg_relation works = KG_RELATION_INIT;
	works.id = "r1"; works.relation_type = "WORKS_FOR";
	works.source_id = "alice"; works.target_id = "acme";

	if (kg_add_entity(store, &alice) || kg_add_entity(store, &acme) ||
	    kg_add_relation(store, &works))
		fprintf(stderr, "add: %s\n", kg_errmsg(store));

	kg_entity_list *out = NULL;
	if (kg_neighbors(store, "alice", NULL, KG_OUT, &out) == KG_OK) {
		for (size_t i = 0; i < out->count; i++)
			printf("alice -> %s (%s)\n", out->items[i]->id, out->items[i]->entity_type);
		kg_entity_list_free(out);               /* one call frees the list and its items */
	}
	kg_close(store);
	return 0;
}
