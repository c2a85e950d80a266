/* A custom runtime in C with plain sockets: the Runtime API loop over one kept-alive connection.
 * It answers every event with a JSON document naming the request and echoing the event, and
 * reports an error when the event contains "fail". */
#define _GNU_SOURCE
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int sock = -1;
static char buf[1 << 16];
static size_t have = 0;

static void connect_api(void) {
    char host[256];
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *colon = strrchr(api, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - api), api);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) exit(2);
    sock = socket(res->ai_family, res->ai_socktype, 0);
    if (sock < 0 || connect(sock, res->ai_addr, res->ai_addrlen) != 0) exit(3);
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(res);
}

static void send_all(const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(sock, data, len, 0);
        if (n <= 0) exit(4);
        data += n;
        len -= (size_t)n;
    }
}

/* Sends a request and reads the answer: its status, one header's value, and its body. */
static int request(const char *method, const char *path, const char *body, const char *want,
                   char *value, size_t value_size, char **out, size_t *out_len) {
    char head[1024];
    size_t body_len = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: lambda\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n", method, path, body_len);
    send_all(head, (size_t)n);
    if (body_len) send_all(body, body_len);
    char *end;
    while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
        ssize_t got = recv(sock, buf + have, sizeof buf - have, 0);
        if (got <= 0) exit(5);
        have += (size_t)got;
    }
    *end = '\0';
    int status = atoi(strchr(buf, ' ') + 1);
    size_t length = 0;
    for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        char *name = line + 2, *colon = strchr(name, ':');
        if (!colon) continue;
        char *val = colon + 1;
        while (*val == ' ') val++;
        char *eol = strstr(val, "\r\n");
        size_t vlen = eol ? (size_t)(eol - val) : strlen(val);
        if (strncasecmp(name, "Content-Length:", 15) == 0) length = strtoul(val, NULL, 10);
        if (want && strncasecmp(name, want, strlen(want)) == 0 && name[strlen(want)] == ':') {
            snprintf(value, value_size, "%.*s", (int)vlen, val);
        }
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char *payload = malloc(length + 1);
    size_t copied = have - head_len < length ? have - head_len : length;
    memcpy(payload, buf + head_len, copied);
    memmove(buf, buf + head_len + copied, have - head_len - copied);
    have -= head_len + copied;
    while (copied < length) {
        ssize_t got = recv(sock, payload + copied, length - copied, 0);
        if (got <= 0) exit(6);
        copied += (size_t)got;
    }
    payload[length] = '\0';
    if (out) {
        *out = payload;
        *out_len = length;
    } else {
        free(payload);
    }
    return status;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    connect_api();
    printf("C runtime started for handler %s\n", getenv("_HANDLER"));
    for (;;) {
        char id[128] = "", path[256];
        char *event;
        size_t event_len;
        if (request("GET", "/2018-06-01/runtime/invocation/next", NULL,
                    "Lambda-Runtime-Aws-Request-Id", id, sizeof id, &event, &event_len) != 200)
            return 7;
        printf("C runtime got %s (%zu bytes)\n", id, event_len);
        if (strstr(event, "fail")) {
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/error", id);
            request("POST", path, "{\"errorMessage\": \"asked to fail\", \"errorType\": \"C.Failure\"}",
                    NULL, NULL, 0, NULL, NULL);
        } else {
            size_t size = event_len + 256;
            char *answer = malloc(size);
            snprintf(answer, size, "{\"runtime\": \"c\", \"request_id\": \"%s\", \"event\": %s}", id,
                     event_len ? event : "null");
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response", id);
            if (request("POST", path, answer, NULL, NULL, 0, NULL, NULL) != 202) return 8;
            free(answer);
        }
        free(event);
    }
}
