//! `[[pipeline.request.images]]`: image parts a request carries besides the photo (a mask,
//! reference images). Each is a fresh canary image per request, registered like the photo.

use serde_spanned::Spanned;
use traceless_scan::canary::ImageFormat;

use super::raw::RawExtraImage;
use super::{BodyEncoding, FileError, ImageAs, Validator};

/// One more image part of every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraImage {
    pub field: String,
    pub image_as: ImageAs,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// The largest side of an extra image: it is generated per request.
const MAX_SIDE: u32 = 2048;

impl Validator<'_> {
    pub(super) fn image_as(
        &self,
        raw: Option<Spanned<String>>,
        key: &str,
    ) -> Result<ImageAs, FileError> {
        match raw {
            None => Ok(ImageAs::File),
            Some(v) => match v.get_ref().as_str() {
                "file" => Ok(ImageAs::File),
                "base64" => Ok(ImageAs::Base64),
                "data-url" => Ok(ImageAs::DataUrl),
                other => self.err(
                    v.span(),
                    key,
                    format!("{other:?}: expected \"file\", \"base64\" or \"data-url\""),
                ),
            },
        }
    }

    pub(super) fn extra_images(
        &self,
        raw: Vec<Spanned<RawExtraImage>>,
        body: BodyEncoding,
    ) -> Result<Vec<ExtraImage>, FileError> {
        let key = "pipeline.request.images";
        let mut out = Vec::new();
        for entry in raw {
            let span = entry.span();
            let r = entry.into_inner();
            let image_as = self.image_as(r.image_as, &format!("{key}.image_as"))?;
            if body == BodyEncoding::Json && image_as == ImageAs::File {
                return self.err(
                    span,
                    &format!("{key}.image_as"),
                    "a JSON body cannot carry a file part: set image_as to \"base64\" or \"data-url\"",
                );
            }
            let format = match r.format {
                None => ImageFormat::Png,
                Some(f) => match f.get_ref().as_str() {
                    "png" => ImageFormat::Png,
                    "jpeg" => ImageFormat::Jpeg,
                    "webp" => ImageFormat::Webp,
                    other => {
                        return self.err(
                            f.span(),
                            &format!("{key}.format"),
                            format!("{other:?}: expected \"png\", \"jpeg\" or \"webp\""),
                        );
                    }
                },
            };
            let side = |v: Option<Spanned<u32>>, name: &str| match v {
                None => Ok(64),
                Some(n) if (1..=MAX_SIDE).contains(n.get_ref()) => Ok(n.into_inner()),
                Some(n) => self.err(
                    n.span(),
                    &format!("{key}.{name}"),
                    format!("{}: expected 1 to {MAX_SIDE} pixels", n.get_ref()),
                ),
            };
            let (width, height) = (side(r.width, "width")?, side(r.height, "height")?);
            out.push(ExtraImage {
                field: r.field.into_inner(),
                image_as,
                format,
                width,
                height,
            });
        }
        Ok(out)
    }
}
