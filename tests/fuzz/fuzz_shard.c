/* Fuzz target: shard reader and record decoder on arbitrary bytes. Must never crash or leak; every
 * failure is an error code with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "flm_shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_record_view v;
    flm_error err = {0};
    flm_sample *s = NULL;
    if (flm_record_decode(data, size, &v, &err) == 0 && flm_record_to_sample(&v, &s, &err) == 0)
        flm_sample_destroy(&s);

    char path[] = "/tmp/flm-fuzz-shard-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    flm_shard_reader *r = NULL;
    if (flm_shard_reader_open(&r, path, &err) == 0) {
        for (uint64_t i = 0; i < flm_shard_reader_count(r) && i < 64; i++)
            if (flm_shard_reader_read(r, i, &s, &err) == 0)
                flm_sample_destroy(&s);
        flm_shard_reader_close(&r);
    }
    unlink(path);
    return 0;
}
