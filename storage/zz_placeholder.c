/* Temporary translation unit so the storage library configures before its sources land. */
typedef int sl_storage_placeholder_t;
