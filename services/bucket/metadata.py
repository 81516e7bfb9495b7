"""The names of the user metadata every segment object carries (x-amz-meta-*): the object contract.

Readers (`coverage`, `clip`, `sync --verify`, the uploader's own checks) and the writer share these.
"""
CAMERA_ID = "camera-id"
CAMERA_NAME = "camera-name"            # %-encoded: headers are ASCII
SEGMENT_START = "segment-start"        # UTC, second resolution, as in the file name
DURATION = "segment-duration"          # seconds of video, from the MP4's boxes
CRC32 = "content-crc32"                # plain objects: base64 CRC32 of the file
PLAIN_SIZE = "crypt-plain-size"        # encrypted objects: size of the plaintext
FINGERPRINT = "crypt-fingerprint"      # encrypted objects: keyed SHA-256 of the plaintext
HOST_ID = "host-id"                    # which uploader wrote the object (HOST_ID or the hostname)
