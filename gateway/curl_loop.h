/*
 * libcurl multi on the libuv loop (the standard pattern: CURLMOPT_SOCKETFUNCTION
 * watches each socket with a uv_poll, CURLMOPT_TIMERFUNCTION drives one
 * uv_timer, curl_multi_socket_action does the work, curl_multi_info_read
 * reports finished transfers). Every HTTP user of the gateway goes through
 * this. The multi keeps a connection cache, so consecutive requests to the
 * same server reuse a kept-alive connection even with a fresh easy handle.
 * Loop thread only.
 */
#ifndef GW_CURL_LOOP_H
#define GW_CURL_LOOP_H

#include <curl/curl.h>
#include <uv.h>

struct gw_curl;

/*
 * A transfer finished: result is CURLE_OK when an HTTP reply came (whatever its
 * status: read it with CURLINFO_RESPONSE_CODE), else why not. The easy handle
 * is already out of the multi: the callback may reuse it (submit it again) or
 * clean it up. Runs on the loop, never from inside gw_curl_submit.
 */
typedef void (*gw_curl_done_fn)(void *ctx, CURL *easy, CURLcode result);

/* NULL after logging why. Calls curl_global_init once per process. */
struct gw_curl *gw_curl_new(uv_loop_t *loop);

/*
 * Start a transfer on an easy handle the caller has set up (and keeps owning).
 * gw_curl uses the handle's CURLOPT_PRIVATE: do not set it. 0, -EBUSY (the
 * handle is already running here), -ESHUTDOWN (closing), -ENOMEM or -EIO.
 */
int gw_curl_submit(struct gw_curl *c, CURL *easy, gw_curl_done_fn done, void *ctx);

/* Abort a running transfer; its done callback will not run. 0 or -ENOENT. */
int gw_curl_cancel(struct gw_curl *c, CURL *easy);

/* Transfers running now. */
int gw_curl_running(const struct gw_curl *c);

/*
 * Abort whatever still runs (their done callbacks run now, with
 * CURLE_ABORTED_BY_CALLBACK), drop the connection cache, close the uv handles;
 * `closed` (may be NULL) runs on the loop once they are closed and the object
 * is freed.
 */
void gw_curl_close(struct gw_curl *c, void (*closed)(void *ctx), void *ctx);

#endif
