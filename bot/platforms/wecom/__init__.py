"""The WeCom (企业微信) adapter: the only code in OrderHub that sees wechatpy or WeCom XML.

`channel.WecomChannel` sends and edits (a `ChatChannel`), `events.EventReader` turns callback XML into neutral
events, `callback` is the `/webhooks/wecom` route that verifies, decrypts and queues, `service` wires them.
"""
