/* Temporary translation unit so the query library configures before its sources land. */
typedef int sl_query_placeholder_t;
