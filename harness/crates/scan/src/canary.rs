//! Canaries: fresh random-content images with real metadata, and the personal data each request carries.
//!
//! Every image is new for every call: a smooth random colour field (so a perceptual hash survives resizing and
//! re-encoding) plus per-pixel noise (so the encoded bytes are high-entropy and unique to the request). With
//! metadata, a real EXIF block (TIFF structure written by `kamadak-exif`, camera make/model, a GPS IFD and a
//! marker in ImageDescription and UserComment) is placed in the container the way that format stores it
//! (container surgery by `img-parts`), plus XMP and a comment/text chunk carrying the same marker.

use std::io::Cursor;

use anyhow::{Context, bail};
use bytes::Bytes;
use exif::experimental::Writer as ExifWriter;
use exif::{Field, In, Rational, Tag, Value};
use image::{ImageEncoder, RgbImage};
use img_parts::{ImageEXIF, jpeg::Jpeg, png::Png, webp::WebP};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// The container formats canaries are made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub fn mime(&self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
        }
    }

    /// The format of an encoded file, from its signature.
    pub fn detect(bytes: &[u8]) -> Option<ImageFormat> {
        match image::guess_format(bytes).ok()? {
            image::ImageFormat::Png => Some(ImageFormat::Png),
            image::ImageFormat::Jpeg => Some(ImageFormat::Jpeg),
            image::ImageFormat::WebP => Some(ImageFormat::Webp),
            _ => None,
        }
    }
}

/// What image to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageSpec {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub metadata: bool,
}

/// A canary image and what it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CanaryImage {
    pub format: ImageFormat,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The marker written into EXIF ImageDescription/UserComment, XMP and the comment chunk.
    pub metadata_marker: Option<String>,
    /// The latitude and longitude written into the GPS IFD, as stored (rounded to the EXIF rationals).
    pub gps: Option<(f64, f64)>,
}

/// Synthetic personal data one request carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PersonalCanaries {
    pub device_id: String,
    pub forwarded_for: String,
    pub prompt_marker: String,
}

/// JPEG quality of generated canaries: high enough that the noise, and so the entropy, survives.
const JPEG_QUALITY: u8 = 90;
/// Amplitude of the per-pixel noise added to the smooth field.
const NOISE: i32 = 40;
/// Control points of the smooth random field, per side.
const FIELD_GRID: usize = 5;
/// EXIF GPS seconds are stored as a rational with this denominator.
const GPS_SECONDS_DENOMINATOR: u32 = 1000;

/// Random-content image, fresh each call; with `metadata` it carries a real EXIF block (GPS, camera make/model,
/// and `metadata_marker` in ImageDescription/UserComment) in the container's own way (PNG eXIf + tEXt, JPEG APP1
/// Exif + XMP APP1 + COM, WebP VP8X + EXIF + XMP chunks).
pub fn generate_image(spec: &ImageSpec, rng: &mut impl Rng) -> anyhow::Result<CanaryImage> {
    if spec.width == 0 || spec.height == 0 || spec.width > 16_384 || spec.height > 16_384 {
        bail!(
            "canary image size {}x{} is out of range (1..=16384 per side)",
            spec.width,
            spec.height
        );
    }
    let pixels = random_pixels(spec.width, spec.height, rng);
    let encoded = encode(&pixels, spec.format).with_context(|| {
        format!(
            "encoding a {}x{} {:?} canary",
            spec.width, spec.height, spec.format
        )
    })?;
    let mut canary = CanaryImage {
        format: spec.format,
        bytes: encoded,
        width: spec.width,
        height: spec.height,
        metadata_marker: None,
        gps: None,
    };
    if spec.metadata {
        inject_fresh_metadata(&mut canary, rng)?;
    }
    Ok(canary)
}

/// A given photo (e.g. a face fixture): pixels untouched, a fresh metadata block with a fresh marker injected
/// (replacing any EXIF the photo had).
pub fn from_photo(bytes: &[u8], metadata: bool, rng: &mut impl Rng) -> anyhow::Result<CanaryImage> {
    let format = ImageFormat::detect(bytes).context("the photo is not a PNG, JPEG or WebP file")?;
    let (width, height) = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .context("reading the photo's header")?
        .into_dimensions()
        .context("reading the photo's dimensions")?;
    let mut canary = CanaryImage {
        format,
        bytes: bytes.to_vec(),
        width,
        height,
        metadata_marker: None,
        gps: None,
    };
    if metadata {
        inject_fresh_metadata(&mut canary, rng)?;
    }
    Ok(canary)
}

/// Device id "tl-dev-<16 hex>", forwarded_for a random 127.x.y.z address, prompt_marker "tlp-<12 hex>".
pub fn personal(rng: &mut impl Rng) -> PersonalCanaries {
    let octets: [u8; 3] = [
        rng.random_range(1..=254),
        rng.random_range(1..=254),
        rng.random_range(1..=254),
    ];
    PersonalCanaries {
        device_id: format!("tl-dev-{}", random_hex(rng, 8)),
        forwarded_for: format!("127.{}.{}.{}", octets[0], octets[1], octets[2]),
        prompt_marker: format!("tlp-{}", random_hex(rng, 6)),
    }
}

fn random_hex(rng: &mut impl Rng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A smooth random colour field (bilinear between random control points) plus uniform noise.
fn random_pixels(width: u32, height: u32, rng: &mut impl Rng) -> RgbImage {
    let grid: Vec<[f32; 3]> = (0..FIELD_GRID * FIELD_GRID)
        .map(|_| {
            [
                rng.random_range(30.0..225.0),
                rng.random_range(30.0..225.0),
                rng.random_range(30.0..225.0),
            ]
        })
        .collect();
    let cells = (FIELD_GRID - 1) as f32;
    let mut noise = vec![0u8; (width * height * 3) as usize];
    rng.fill_bytes(&mut noise);
    let mut img = RgbImage::new(width, height);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let fx = x as f32 / (width.max(2) - 1) as f32 * cells;
        let fy = y as f32 / (height.max(2) - 1) as f32 * cells;
        let (gx, gy) = (
            (fx as usize).min(FIELD_GRID - 2),
            (fy as usize).min(FIELD_GRID - 2),
        );
        let (tx, ty) = (fx - gx as f32, fy - gy as f32);
        let at = |i: usize, j: usize| grid[j * FIELD_GRID + i];
        let i = ((y * width + x) * 3) as usize;
        for c in 0..3 {
            let top = at(gx, gy)[c] * (1.0 - tx) + at(gx + 1, gy)[c] * tx;
            let bottom = at(gx, gy + 1)[c] * (1.0 - tx) + at(gx + 1, gy + 1)[c] * tx;
            let smooth = top * (1.0 - ty) + bottom * ty;
            let jitter = (noise[i + c] as i32 * 2 * NOISE) / 255 - NOISE;
            px.0[c] = (smooth as i32 + jitter).clamp(0, 255) as u8;
        }
    }
    img
}

fn encode(img: &RgbImage, format: ImageFormat) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let (w, h) = img.dimensions();
    let color = image::ExtendedColorType::Rgb8;
    match format {
        ImageFormat::Png => {
            image::codecs::png::PngEncoder::new(&mut out).write_image(img.as_raw(), w, h, color)?
        }
        ImageFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out,
            JPEG_QUALITY,
        )
        .write_image(img.as_raw(), w, h, color)?,
        ImageFormat::Webp => image::codecs::webp::WebPEncoder::new_lossless(&mut out).write_image(
            img.as_raw(),
            w,
            h,
            color,
        )?,
    }
    Ok(out)
}

/// What one metadata block says.
struct Metadata {
    marker: String,
    lat: f64,
    lon: f64,
    make: String,
    model: String,
}

fn inject_fresh_metadata(canary: &mut CanaryImage, rng: &mut impl Rng) -> anyhow::Result<()> {
    let lat = quantise_gps(rng.random_range(-80.0..80.0));
    let lon = quantise_gps(rng.random_range(-179.0..179.0));
    let meta = Metadata {
        marker: format!("tlm-{}", random_hex(rng, 6)),
        lat,
        lon,
        make: "Traceless Canary".to_string(),
        model: format!("TLC-{}", random_hex(rng, 2)),
    };
    let tiff = exif_tiff(&meta).context("writing the EXIF block")?;
    let xmp = xmp_packet(&meta);
    canary.bytes = match canary.format {
        ImageFormat::Png => inject_png(&canary.bytes, tiff, &meta)?,
        ImageFormat::Jpeg => inject_jpeg(&canary.bytes, tiff, &xmp, &meta)?,
        ImageFormat::Webp => inject_webp(&canary.bytes, tiff, &xmp)?,
    };
    canary.metadata_marker = Some(meta.marker);
    canary.gps = Some((lat, lon));
    Ok(())
}

/// Degrees rounded to what degrees/minutes/seconds rationals store, so the value reported is the value written.
fn quantise_gps(deg: f64) -> f64 {
    let scale = 3600.0 * GPS_SECONDS_DENOMINATOR as f64;
    (deg * scale).round() / scale
}

fn dms(deg: f64) -> Vec<Rational> {
    let total = (deg.abs() * 3600.0 * GPS_SECONDS_DENOMINATOR as f64).round() as u64;
    let per_degree = 3600 * GPS_SECONDS_DENOMINATOR as u64;
    let per_minute = 60 * GPS_SECONDS_DENOMINATOR as u64;
    let d = total / per_degree;
    let m = (total % per_degree) / per_minute;
    let s = total % per_minute;
    vec![
        Rational {
            num: d as u32,
            denom: 1,
        },
        Rational {
            num: m as u32,
            denom: 1,
        },
        Rational {
            num: s as u32,
            denom: GPS_SECONDS_DENOMINATOR,
        },
    ]
}

/// A little-endian TIFF structure: IFD0 (make, model, description), the Exif IFD (user comment) and the GPS IFD.
fn exif_tiff(meta: &Metadata) -> anyhow::Result<Vec<u8>> {
    let ascii = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
    let mut comment = b"ASCII\0\0\0".to_vec();
    comment.extend_from_slice(meta.marker.as_bytes());
    let fields = [
        Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: ascii(&meta.make),
        },
        Field {
            tag: Tag::Model,
            ifd_num: In::PRIMARY,
            value: ascii(&meta.model),
        },
        Field {
            tag: Tag::ImageDescription,
            ifd_num: In::PRIMARY,
            value: ascii(&meta.marker),
        },
        Field {
            tag: Tag::UserComment,
            ifd_num: In::PRIMARY,
            value: Value::Undefined(comment, 0),
        },
        Field {
            tag: Tag::GPSVersionID,
            ifd_num: In::PRIMARY,
            value: Value::Byte(vec![2, 3, 0, 0]),
        },
        Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: ascii(if meta.lat >= 0.0 { "N" } else { "S" }),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(dms(meta.lat)),
        },
        Field {
            tag: Tag::GPSLongitudeRef,
            ifd_num: In::PRIMARY,
            value: ascii(if meta.lon >= 0.0 { "E" } else { "W" }),
        },
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(dms(meta.lon)),
        },
    ];
    let mut writer = ExifWriter::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, true)?;
    Ok(out.into_inner())
}

fn xmp_packet(meta: &Metadata) -> String {
    format!(
        concat!(
            "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>",
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">",
            "<rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" ",
            "xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\" xmlns:exif=\"http://ns.adobe.com/exif/1.0/\" ",
            "tiff:Make=\"{make}\" tiff:Model=\"{model}\" exif:GPSLatitude=\"{lat:.6}\" exif:GPSLongitude=\"{lon:.6}\">",
            "<dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{marker}</rdf:li></rdf:Alt></dc:description>",
            "</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
        ),
        make = meta.make,
        model = meta.model,
        lat = meta.lat,
        lon = meta.lon,
        marker = meta.marker,
    )
}

const XMP_JPEG_NAMESPACE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

fn inject_png(bytes: &[u8], tiff: Vec<u8>, meta: &Metadata) -> anyhow::Result<Vec<u8>> {
    use img_parts::png::PngChunk;
    let mut png =
        Png::from_bytes(Bytes::copy_from_slice(bytes)).context("parsing the PNG container")?;
    png.remove_chunks_by_type(*b"tEXt");
    png.set_exif(Some(tiff.into()));
    let mut text = b"Comment\0".to_vec();
    text.extend_from_slice(meta.marker.as_bytes());
    // After IHDR and eXIf, before the image data.
    let at = png
        .chunks()
        .iter()
        .position(|c| &c.kind() == b"IDAT")
        .unwrap_or(1);
    png.chunks_mut()
        .insert(at, PngChunk::new(*b"tEXt", text.into()));
    Ok(png.encoder().bytes().to_vec())
}

fn inject_jpeg(bytes: &[u8], tiff: Vec<u8>, xmp: &str, meta: &Metadata) -> anyhow::Result<Vec<u8>> {
    use img_parts::jpeg::{JpegSegment, markers};
    let mut jpeg =
        Jpeg::from_bytes(Bytes::copy_from_slice(bytes)).context("parsing the JPEG container")?;
    jpeg.segments_mut().retain(|s| {
        let xmp_segment =
            s.marker() == markers::APP1 && s.contents().starts_with(XMP_JPEG_NAMESPACE);
        !xmp_segment && s.marker() != markers::COM
    });
    jpeg.set_exif(Some(tiff.into()));
    let exif_at = jpeg
        .segments()
        .iter()
        .position(|s| s.marker() == markers::APP1 && s.contents().starts_with(b"Exif\0\0"))
        .context("EXIF segment not placed")?;
    let mut xmp_contents = XMP_JPEG_NAMESPACE.to_vec();
    xmp_contents.extend_from_slice(xmp.as_bytes());
    let comment = format!("{} {}", meta.marker, meta.model);
    let segments = jpeg.segments_mut();
    segments.insert(
        exif_at + 1,
        JpegSegment::new_with_contents(markers::APP1, xmp_contents.into()),
    );
    segments.insert(
        exif_at + 2,
        JpegSegment::new_with_contents(markers::COM, comment.into_bytes().into()),
    );
    Ok(jpeg.encoder().bytes().to_vec())
}

fn inject_webp(bytes: &[u8], tiff: Vec<u8>, xmp: &str) -> anyhow::Result<Vec<u8>> {
    use img_parts::riff::{RiffChunk, RiffContent};
    use img_parts::webp::{CHUNK_VP8X, CHUNK_XMP};
    /// VP8X flag bit saying an XMP chunk is present.
    const VP8X_XMP_FLAG: u8 = 0b0000_0100;
    let mut webp =
        WebP::from_bytes(Bytes::copy_from_slice(bytes)).context("parsing the WebP container")?;
    webp.remove_chunks_by_id(CHUNK_XMP);
    // Converts a simple file into the extended (VP8X) format with the EXIF flag set.
    webp.set_exif(Some(tiff.into()));
    webp.chunks_mut().push(RiffChunk::new(
        CHUNK_XMP,
        RiffContent::Data(Bytes::from(xmp.as_bytes().to_vec())),
    ));
    let vp8x = webp
        .chunks_mut()
        .iter_mut()
        .find(|c| c.id() == CHUNK_VP8X)
        .context("the WebP file has no VP8X header after adding EXIF")?;
    let RiffContent::Data(data) = vp8x.content_mut() else {
        bail!("malformed VP8X chunk")
    };
    let mut flags = data.to_vec();
    flags[0] |= VP8X_XMP_FLAG;
    *data = flags.into();
    Ok(webp.encoder().bytes().to_vec())
}
