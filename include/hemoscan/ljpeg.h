/* ljpeg.h - a fast decoder for the one kind of JPEG most CT archives hold:
 * lossless JPEG (ITU-T T.81 process 14, SOF3), one component, 2 to 16 bits.
 *
 * Why not only DCMTK: DCMTK decodes lossless JPEG with its copy of the IJG
 * 6b library, which goes through generic per-row buffers and calls per
 * sample; on a 512 x 512 slice that is the largest single cost of a study
 * (about 2.5 ms of 7). No Debian 12 library decodes process 14 faster
 * (libjpeg-turbo gained lossless support only in 3.0; GDCM carries the
 * same IJG code). This decoder covers the common case only and declines
 * everything else, so the caller hands those streams to DCMTK, which stays
 * the reference: the tests check that both give the same samples.
 *
 * Handled: baseline lossless frames (SOF3) with one component, sample
 * precision 2..16, predictors (selection values) 1..7, point transform
 * 0..15, Huffman tables (DHT) before or between frame and scan, restart
 * intervals that are whole rows (RSTn markers checked in order), APPn/COM
 * segments skipped. Declined (returns 0): several components or scans,
 * arithmetic coding, DNL, any other SOF, a restart interval that is not a
 * multiple of the width, an image size different from the expected one,
 * and any stream that ends before its last sample or breaks a rule: the
 * fallback decoder then decides what the stream is worth. */
#ifndef HEMOSCAN_LJPEG_H
#define HEMOSCAN_LJPEG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decode data (len bytes, starting at SOI) into out, width * height
 * samples, row-major, as unsigned values of the frame's precision (shifted
 * left by the point transform, as T.81 reconstructs them). Returns 1 on
 * success. Returns 0 when the stream is not one this decoder handles or
 * is not well formed, with a short reason in why (128 bytes, or NULL for
 * none). out is only fully written on success. Never reads outside data. */
int hs_ljpeg_decode(const unsigned char *data, size_t len, int width, int height, uint16_t *out,
                    char *why);

#ifdef __cplusplus
}
#endif

#endif
