"""The ports of handlers/ and engine/ over outside services and libraries: SMTP mail, OCR, the holiday calendar, the
digest chart, the carriers' APIs (carriers/) and the refund flow's view of a return parcel."""
