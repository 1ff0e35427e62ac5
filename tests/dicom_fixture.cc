/* dicom_fixture.cc - writes synthetic DICOM CT slices for the DICOM suite
 * (see dicom_fixture.h).
 *
 * Written with DCMTK, the library hemoscan reads with, because a
 * hand-assembled byte stream would test our idea of the format rather than
 * the format; DCMTK also gives the big-endian encoding for free. Test-only:
 * it is linked into tests/unit_tests, never into the library, so the rule
 * that src/study/dicom.cc is the only DCMTK user of the product still holds. */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcxfer.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dicom_fixture.h"

extern "C" void hs_test_dicom_slice_default(hs_test_dicom_slice *s, int rows, int columns,
                                            const unsigned short *pixels)
{
    *s = hs_test_dicom_slice();
    s->rows = rows;
    s->columns = columns;
    s->bits_allocated = 16;
    s->bits_stored = 16;
    s->high_bit = 15;
    s->pixel_representation = 1;
    s->photometric = "MONOCHROME2";
    s->modality = "CT";
    s->sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
    s->image_type = "ORIGINAL\\PRIMARY\\AXIAL";
    s->sop_uid = "1.2.826.0.1.3680043.2.1143.99.1";
    s->study_uid = "1.2.826.0.1.3680043.2.1143.99.2";
    s->series_uid = "1.2.826.0.1.3680043.2.1143.99.3";
    s->has_instance_number = 1;
    s->instance_number = 1;
    s->has_orientation = 1;
    const double axial[6] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++)
        s->orientation[i] = axial[i];
    s->z = 40.0;
    s->slope = 1.0;
    s->intercept = 0.0;
    s->frames = 1;
    s->pixels = pixels;
}

namespace {

/* Puts a UID of len bytes (0: up to the first NUL) as they are: DCMTK's
 * putAndInsertString would stop at an embedded NUL. */
OFCondition put_uid(DcmDataset *ds, const DcmTagKey &tag, const char *v, size_t len)
{
    return ds->putAndInsertString(tag, v, (Uint32)(len > 0 ? len : std::strlen(v)));
}

std::string hs_ds(double v)
{
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
}

} // namespace

extern "C" int hs_test_dicom_write(const char *path, const hs_test_dicom_slice *s)
{
    try {
        DcmFileFormat ff;
        DcmDataset *ds = ff.getDataset();
        OFCondition c = EC_Normal;
        if (s->sop_class_uid != nullptr)
            c = ds->putAndInsertString(DCM_SOPClassUID, s->sop_class_uid);
        if (c.good())
            c = put_uid(ds, DCM_SOPInstanceUID, s->sop_uid, s->sop_uid_len);
        if (c.good())
            c = put_uid(ds, DCM_StudyInstanceUID, s->study_uid, s->study_uid_len);
        if (c.good())
            c = put_uid(ds, DCM_SeriesInstanceUID, s->series_uid, s->series_uid_len);
        if (c.good() && s->modality != nullptr)
            c = ds->putAndInsertString(DCM_Modality, s->modality);
        if (c.good())
            c = ds->putAndInsertString(DCM_ImageType, s->image_type);
        if (c.good() && s->lossy)
            c = ds->putAndInsertString(DCM_LossyImageCompression, "01");
        if (c.good())
            c = ds->putAndInsertString(DCM_PatientID, "HS-SYNTH");
        if (c.good() && s->has_instance_number)
            c = ds->putAndInsertString(DCM_InstanceNumber, std::to_string(s->instance_number).c_str());
        if (c.good() && s->has_orientation) {
            std::string o;
            for (int i = 0; i < 6; i++)
                o += (i ? "\\" : "") + hs_ds(s->orientation[i]);
            c = ds->putAndInsertString(DCM_ImageOrientationPatient, o.c_str());
        }
        if (c.good())
            c = ds->putAndInsertString(DCM_ImagePositionPatient, ("-125\\-125\\" + hs_ds(s->z)).c_str());
        if (c.good())
            c = ds->putAndInsertString(DCM_PixelSpacing, "0.5\\0.5");
        if (c.good())
            c = ds->putAndInsertString(DCM_GantryDetectorTilt, hs_ds(s->gantry_tilt).c_str());
        std::string slope = s->slope_text != nullptr ? s->slope_text : hs_ds(s->slope);
        std::string intercept = s->intercept_text != nullptr ? s->intercept_text : hs_ds(s->intercept);
        if (c.good() && !slope.empty())
            c = ds->putAndInsertString(DCM_RescaleSlope, slope.c_str());
        if (c.good() && !intercept.empty())
            c = ds->putAndInsertString(DCM_RescaleIntercept, intercept.c_str());
        if (c.good())
            c = ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
        if (c.good())
            c = ds->putAndInsertString(DCM_PhotometricInterpretation, s->photometric);
        if (c.good())
            c = ds->putAndInsertUint16(DCM_Rows, (Uint16)s->rows);
        if (c.good())
            c = ds->putAndInsertUint16(DCM_Columns, (Uint16)s->columns);
        if (c.good())
            c = ds->putAndInsertUint16(DCM_BitsAllocated, (Uint16)s->bits_allocated);
        if (c.good())
            c = ds->putAndInsertUint16(DCM_BitsStored, (Uint16)s->bits_stored);
        if (c.good())
            c = ds->putAndInsertUint16(DCM_HighBit, (Uint16)s->high_bit);
        if (c.good())
            c = ds->putAndInsertUint16(DCM_PixelRepresentation, (Uint16)s->pixel_representation);
        if (c.good() && s->has_padding) {
            if (s->pixel_representation == 1)
                c = ds->putAndInsertSint16(DcmTag(DCM_PixelPaddingValue, EVR_SS), (Sint16)s->padding_value);
            else
                c = ds->putAndInsertUint16(DcmTag(DCM_PixelPaddingValue, EVR_US), (Uint16)s->padding_value);
        }
        int frames = s->frames > 1 ? s->frames : 1;
        if (c.good() && s->frames > 1)
            c = ds->putAndInsertString(DCM_NumberOfFrames, std::to_string(frames).c_str());
        size_t n = (size_t)s->rows * (size_t)s->columns;
        std::vector<Uint16> px;
        for (int f = 0; f < frames; f++)
            px.insert(px.end(), s->pixels, s->pixels + n);
        if (c.good())
            c = ds->putAndInsertUint16Array(DCM_PixelData, px.data(), (unsigned long)px.size());
        if (c.good())
            c = ff.saveFile(OFFilename(path), s->big_endian ? EXS_BigEndianExplicit : EXS_LittleEndianExplicit);
        if (c.bad()) {
            std::fprintf(stderr, "hs_test_dicom_write: %s: %s\n", path, c.text());
            return -1;
        }
        return 0;
    } catch (...) {
        std::fprintf(stderr, "hs_test_dicom_write: %s: unexpected failure\n", path);
        return -1;
    }
}

extern "C" int hs_test_dicom_dcmtk_pixels16(const char *path, unsigned short *out, size_t n)
{
    DcmFileFormat ff;
    if (ff.loadFile(OFFilename(path)).bad())
        return -1;
    DcmDataset *ds = ff.getDataset();
    if (ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad())
        return -1;
    const Uint16 *px = nullptr;
    unsigned long count = 0;
    if (ds->findAndGetUint16Array(DCM_PixelData, px, &count).bad() || px == nullptr || count < n)
        return -1;
    std::memcpy(out, px, n * sizeof *out);
    return 0;
}

extern "C" int hs_test_dicom_frame_bytes(const char *path, unsigned char **data, size_t *len)
{
    *data = nullptr;
    *len = 0;
    DcmFileFormat ff;
    if (ff.loadFile(OFFilename(path)).bad())
        return -1;
    DcmDataset *ds = ff.getDataset();
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || el == nullptr)
        return -1;
    DcmPixelSequence *seq = nullptr;
    E_TransferSyntax xfer = ds->getOriginalXfer();
    if (OFstatic_cast(DcmPixelData *, el)->getEncapsulatedRepresentation(xfer, nullptr, seq).bad() || seq == nullptr)
        return -1;
    std::vector<unsigned char> all;
    for (unsigned long i = 1; i < seq->card(); i++) {
        DcmPixelItem *item = nullptr;
        Uint8 *bytes = nullptr;
        if (seq->getItem(item, i).bad() || item == nullptr)
            return -1;
        if (item->getLength() > 0 && item->getUint8Array(bytes).good() && bytes != nullptr)
            all.insert(all.end(), bytes, bytes + item->getLength());
    }
    *data = static_cast<unsigned char *>(std::malloc(all.size() > 0 ? all.size() : 1));
    if (*data == nullptr)
        return -1;
    if (!all.empty())
        std::memcpy(*data, all.data(), all.size());
    *len = all.size();
    return 0;
}
