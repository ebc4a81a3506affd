/* Messages between OSDs, on the messenger. */
#ifndef BASALT_OSD_OSD_PROTO_H
#define BASALT_OSD_OSD_PROTO_H

enum osd_msg_type {
	OSD_MSG_PING = 64,   /* le32 from, le64 map epoch, le64 stamp */
	OSD_MSG_PING_REPLY,  /* le32 from, le64 map epoch, le64 stamp echoed */
};

#define OSD_PING_LEN 20

#endif
