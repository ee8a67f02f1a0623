//! Streaming uploads of objects recvault makes itself (case-file bundles): one multipart upload,
//! fed part by part in constant memory, each part carrying its Content-MD5 (which the store
//! checks), and aborted whole if anything fails, so no half-written object ever appears.

use crate::error::classify;
use crate::objects::tag_query;
use crate::{Store, StoreError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use md5::Digest;

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct MultipartUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub number: i32,
    pub etag: String,
}

impl Store {
    /// Starts a multipart upload; `tags` apply to the completed object.
    pub async fn start_upload(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        metadata: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<MultipartUpload, StoreError> {
        let mut req = self.client.create_multipart_upload().bucket(bucket).key(key).content_type(content_type);
        for (k, v) in metadata {
            req = req.metadata(k, v);
        }
        if !tags.is_empty() {
            req = req.tagging(tag_query(tags));
        }
        let out = req.send().await.map_err(|e| classify("CreateMultipartUpload", bucket, key, e))?;
        Ok(MultipartUpload {
            bucket: bucket.into(),
            key: key.into(),
            upload_id: out.upload_id().unwrap_or_default().to_string(),
        })
    }

    /// Uploads part `number` (from 1) with its Content-MD5.
    pub async fn upload_part(
        &self,
        u: &MultipartUpload,
        number: i32,
        bytes: Bytes,
    ) -> Result<UploadedPart, StoreError> {
        let md5 = aws_smithy_types::base64::encode(<[u8; 16]>::from(md5::Md5::digest(&bytes)));
        let out = self
            .client
            .upload_part()
            .bucket(&u.bucket)
            .key(&u.key)
            .upload_id(&u.upload_id)
            .part_number(number)
            .content_md5(md5)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify("UploadPart", &u.bucket, &u.key, e))?;
        Ok(UploadedPart { number, etag: out.e_tag().unwrap_or_default().to_string() })
    }

    /// Completes the upload; returns the new version's id (by HEAD where the store does not say).
    pub async fn complete_upload(
        &self,
        u: &MultipartUpload,
        mut parts: Vec<UploadedPart>,
    ) -> Result<Option<String>, StoreError> {
        parts.sort_by_key(|p| p.number);
        let completed = parts
            .into_iter()
            .map(|p| CompletedPart::builder().part_number(p.number).e_tag(p.etag).build())
            .collect::<Vec<_>>();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&u.bucket)
            .key(&u.key)
            .upload_id(&u.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(|e| classify("CompleteMultipartUpload", &u.bucket, &u.key, e))?;
        match out.version_id() {
            Some(v) => Ok(Some(v.to_string())),
            None => Ok(self.head(&u.bucket, &u.key).await?.and_then(|h| h.version_id)),
        }
    }

    /// Aborts an upload (best effort: the bucket's lifecycle rule aborts what is left after 7 days).
    pub async fn abort_upload(&self, u: &MultipartUpload) {
        if let Err(e) =
            self.client.abort_multipart_upload().bucket(&u.bucket).key(&u.key).upload_id(&u.upload_id).send().await
        {
            tracing::warn!(key = u.key, error = %classify("AbortMultipartUpload", &u.bucket, &u.key, e), "could not abort an upload");
        }
    }

    /// Aborts every unfinished upload under `prefix` (a builder that died left its upload open).
    /// Returns how many.
    pub async fn abort_uploads_under(&self, bucket: &str, prefix: &str) -> Result<usize, StoreError> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| classify("ListMultipartUploads", bucket, prefix, e))?;
        let mut n = 0;
        for up in out.uploads() {
            if let (Some(key), Some(id)) = (up.key(), up.upload_id()) {
                self.abort_upload(&MultipartUpload { bucket: bucket.into(), key: key.into(), upload_id: id.into() })
                    .await;
                n += 1;
            }
        }
        Ok(n)
    }
}
