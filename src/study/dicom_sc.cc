/* dicom_sc.cc - the review's key image as a DICOM Secondary Capture (see
 * include/hemoscan/dicom_sc.h).
 *
 * Why it is built this way:
 * - DCMTK writes the file, as it reads every DICOM file hemoscan takes
 *   in; like dicom.cc this file keeps DCMTK away from the C code behind
 *   an extern "C" entry point that catches everything.
 * - Patient and study attributes are copied from the key slice's file, not
 *   rebuilt from what the reader kept: the reader keeps a few of them, in
 *   fixed-size buffers, while PACS needs them exactly as the modality sent
 *   them (names with their character set, IDs with their issuer). The
 *   source is opened with a small maximum read length, so its pixel data
 *   stays on disk.
 * - Attributes of type 2 (present, possibly empty) that the source lacks
 *   are written empty rather than left out, so the object is valid. */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/oflog/oflog.h"

#include <cstdio>
#include <ctime>
#include <mutex>
#include <new>
#include <string>

#include "hemoscan/dicom_sc.h"

namespace {

/* Elements of the Patient, General Study and Patient Study modules (and
 * the character set they are written in) copied from the source; those
 * marked type 2 are written empty when the source lacks them. */
struct copied {
    DcmTagKey tag;
    bool type2;
};
const copied copied_elements[] = {
    {DCM_SpecificCharacterSet, false}, {DCM_PatientName, true},  {DCM_PatientID, true},
    {DCM_IssuerOfPatientID, false},    {DCM_PatientBirthDate, true}, {DCM_PatientSex, true},
    {DCM_PatientAge, false},           {DCM_StudyInstanceUID, false}, {DCM_StudyDate, true},
    {DCM_StudyTime, true},             {DCM_ReferringPhysicianName, true}, {DCM_StudyID, true},
    {DCM_AccessionNumber, true},       {DCM_StudyDescription, false},
};

/* Maximum length of an element read from the source: larger ones (pixel
 * data) stay on disk. */
const Uint32 max_read = 4096;

std::once_flag quiet_once;

bool put(DcmDataset *d, const DcmTagKey &tag, const char *value, OFCondition &why)
{
    OFCondition c = d->putAndInsertString(tag, value != nullptr ? value : "");
    if (c.bad())
        why = c;
    return c.good();
}

bool put_u16(DcmDataset *d, const DcmTagKey &tag, unsigned value, OFCondition &why)
{
    OFCondition c = d->putAndInsertUint16(tag, (Uint16)value);
    if (c.bad())
        why = c;
    return c.good();
}

/* One item of a reference sequence naming the key slice. */
bool reference(DcmDataset *d, const DcmTagKey &sequence, const hs_sc_request *req, OFCondition &why)
{
    DcmItem *item = nullptr;
    OFCondition c = d->findOrCreateSequenceItem(sequence, item, -2 /* a new item at the end */);
    if (c.good())
        c = item->putAndInsertString(DCM_ReferencedSOPClassUID, req->source_sop_class_uid);
    if (c.good())
        c = item->putAndInsertString(DCM_ReferencedSOPInstanceUID, req->source_sop_uid);
    if (c.good() && req->source_frame > 0)
        c = item->putAndInsertString(DCM_ReferencedFrameNumber, std::to_string(req->source_frame).c_str());
    if (c.bad())
        why = c;
    return c.good();
}

hs_status write_sc(const hs_sc_request *req, const char *path, hs_sc_written *out, hs_error *err)
{
    std::call_once(quiet_once, []() { OFLog::configure(OFLogger::FATAL_LOG_LEVEL); });
    DcmFileFormat source;
    OFCondition c = source.loadFile(OFFilename(req->source_path), EXS_Unknown, EGL_noChange, max_read, ERM_autoDetect);
    if (c.bad())
        return hs_fail(err, HS_ERR_IO, "%s: cannot read the key slice's file: %s", req->source_path, c.text());
    DcmDataset *src = source.getDataset();
    OFString study_uid;
    if (src->findAndGetOFString(DCM_StudyInstanceUID, study_uid).bad() || study_uid.empty())
        return hs_fail(err, HS_ERR_FORMAT, "%s: no StudyInstanceUID: the capture would belong to no study",
                       req->source_path);

    DcmFileFormat file;
    DcmDataset *d = file.getDataset();
    for (const copied &e : copied_elements) {
        DcmElement *el = nullptr;
        if (src->findAndGetElement(e.tag, el, OFFalse, OFTrue /* a copy */).good() && el != nullptr) {
            c = d->insert(el, OFTrue);
            if (c.bad()) {
                delete el;
                return hs_fail(err, HS_ERR_IO, "%s: %s", path, c.text());
            }
        } else if (e.type2) {
            d->insertEmptyElement(e.tag);
        }
    }

    char series_uid[65], sop_uid[65]; /* a UID has 64 characters at most */
    dcmGenerateUniqueIdentifier(series_uid, SITE_SERIES_UID_ROOT);
    dcmGenerateUniqueIdentifier(sop_uid, SITE_INSTANCE_UID_ROOT);
    char date[16], clock[16];
    time_t now = time(nullptr);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%d", &tm);
    strftime(clock, sizeof clock, "%H%M%S", &tm);
    const size_t bytes = (size_t)req->width * (size_t)req->height * 3;

    OFCondition why = EC_Normal;
    bool ok = put(d, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage, why) &&
              put(d, DCM_SOPInstanceUID, sop_uid, why) && put(d, DCM_SeriesInstanceUID, series_uid, why) &&
              put(d, DCM_Modality, "OT", why) &&
              put(d, DCM_SeriesNumber, std::to_string(req->series_number).c_str(), why) &&
              put(d, DCM_SeriesDescription, req->series_description, why) &&
              put(d, DCM_SeriesDate, date, why) && put(d, DCM_SeriesTime, clock, why) &&
              put(d, DCM_InstanceNumber, "1", why) && put(d, DCM_ContentDate, date, why) &&
              put(d, DCM_ContentTime, clock, why) && put(d, DCM_InstanceCreationDate, date, why) &&
              put(d, DCM_InstanceCreationTime, clock, why) && put(d, DCM_ConversionType, "WSD", why) &&
              put(d, DCM_Manufacturer, "hemoscan", why) && put(d, DCM_SoftwareVersions, req->software, why) &&
              put(d, DCM_ImageType, "DERIVED\\SECONDARY", why) &&
              put(d, DCM_DerivationDescription, req->derivation, why) &&
              put(d, DCM_ImageComments, req->comments, why) && put(d, DCM_BurnedInAnnotation, "YES", why) &&
              put(d, DCM_LossyImageCompression, "00", why) &&
              put(d, DCM_PatientOrientation, "", why) && /* type 2: present, empty */
              reference(d, DCM_SourceImageSequence, req, why) &&
              reference(d, DCM_ReferencedImageSequence, req, why) &&
              put_u16(d, DCM_SamplesPerPixel, 3, why) && put(d, DCM_PhotometricInterpretation, "RGB", why) &&
              put_u16(d, DCM_PlanarConfiguration, 0, why) && put_u16(d, DCM_Rows, (unsigned)req->height, why) &&
              put_u16(d, DCM_Columns, (unsigned)req->width, why) && put_u16(d, DCM_BitsAllocated, 8, why) &&
              put_u16(d, DCM_BitsStored, 8, why) && put_u16(d, DCM_HighBit, 7, why) &&
              put_u16(d, DCM_PixelRepresentation, 0, why);
    if (ok) {
        c = d->putAndInsertUint8Array(DCM_PixelData, req->rgb, (unsigned long)bytes);
        ok = c.good();
        if (!ok)
            why = c;
    }
    if (!ok)
        return hs_fail(err, HS_ERR_IO, "%s: cannot compose the secondary capture: %s", path, why.text());
    c = file.saveFile(OFFilename(path), EXS_LittleEndianExplicit);
    if (c.bad())
        return hs_fail(err, HS_ERR_IO, "%s: cannot write: %s", path, c.text());
    snprintf(out->study_uid, sizeof out->study_uid, "%s", study_uid.c_str());
    snprintf(out->series_uid, sizeof out->series_uid, "%s", series_uid);
    snprintf(out->sop_uid, sizeof out->sop_uid, "%s", sop_uid);
    return HS_OK;
}

} // namespace

extern "C" hs_status hs_dicom_write_secondary_capture(const hs_sc_request *req, const char *path,
                                                      hs_sc_written *out, hs_error *err)
{
    *out = hs_sc_written{};
    if (req == nullptr || req->rgb == nullptr || req->width < 1 || req->height < 1 || req->width > 65535 ||
        req->height > 65535 || req->source_path == nullptr || req->source_sop_class_uid == nullptr ||
        req->source_sop_uid == nullptr || path == nullptr)
        return hs_fail(err, HS_ERR_ARG, "secondary capture: no picture, no source or no target given");
    try {
        return write_sc(req, path, out, err);
    } catch (const std::bad_alloc &) {
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", path);
    } catch (...) {
        return hs_fail(err, HS_ERR_IO, "%s: unexpected error while writing", path);
    }
}
