/* Placeholder entry point, replaced by the real command line below. */
int main(void) {
    return 0;
}
