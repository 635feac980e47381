/*
 * http_json.c: JSON request bodies (the members API), the only file that
 * includes jansson. Answers are written by hand elsewhere: they are small
 * and their field order must match etcd's.
 */
#include "http_int.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int http_json_peer_urls(const char *body, size_t len, char (*urls_out)[256],
                        int cap, int *count, char err[HTTP_CAUSE_SIZE])
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, HTTP_CAUSE_SIZE, "invalid JSON: %.60s", jerr.text);
        return CN_EINVAL;
    }
    int rc = CN_OK;
    json_t *urls =
        json_is_object(root) ? json_object_get(root, "peerURLs") : NULL;
    if (urls == NULL || !json_is_array(urls)) {
        snprintf(err, HTTP_CAUSE_SIZE, "peerURLs: expected a list of URLs");
        rc = CN_EINVAL;
        goto out;
    }
    size_t n = json_array_size(urls);
    if (n == 0 || n > (size_t)cap) {
        snprintf(err, HTTP_CAUSE_SIZE, "peerURLs: expected 1 to %d URLs", cap);
        rc = CN_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *u = json_array_get(urls, i);
        const char *s = json_string_value(u);
        if (s == NULL ||
            (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)) {
            snprintf(err, HTTP_CAUSE_SIZE, "URL scheme must be http or https");
            rc = CN_EINVAL;
            goto out;
        }
        if (strlen(s) >= 256) {
            snprintf(err, HTTP_CAUSE_SIZE, "URL too long");
            rc = CN_EINVAL;
            goto out;
        }
        strcpy(urls_out[i], s);
    }
    *count = (int)n;
out:
    json_decref(root);
    return rc;
}
