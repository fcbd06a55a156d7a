/* Temporary translation unit so the collector library configures before its sources land. */
typedef int sl_collector_placeholder_t;
