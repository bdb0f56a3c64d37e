// Command mode: runwarm compiles this file once at registration (gcc; add flags such as -lm
// under [build] in runwarm.toml) and runs the program once per invocation inside a warm
// sandbox. The payload JSON arrives on stdin (and in the file $RUNWARM_ARGS_FILE), each
// top-level scalar also as PARAM_<NAME>. Exit 0 is success; the last line of stdout, if it is
// JSON, is the result.
#include <stdio.h>
#include <stdlib.h>

// Writes s with what JSON does not allow in a string escaped.
static void put_json_chars(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
}

int main(void) {
    // The whole payload is on stdin, for programs that need more than top-level scalars.
    char buffer[4096];
    size_t payload_bytes = 0;
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
        payload_bytes += n;
    }
    const char *name = getenv("PARAM_NAME");
    if (name == NULL || name[0] == '\0') {
        name = "world";
    }
    printf("read %zu bytes of payload\n", payload_bytes);
    printf("{\"greeting\": \"hello ");
    put_json_chars(name);
    printf("\"}\n");
    return 0;
}
