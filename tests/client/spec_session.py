"""The complete example session of the DM protocol notes (dm-protocol §10), verbatim.

Inputs: server URI ``https://dms.example.com/dm``, ServerID ``com.example.dms``,
device ``IMEI:490154203237518``; CLCRED ``dmclient01`` / ``s3cr3t!`` / nonce
``01..10``; SRVCRED ``com.example.dms`` / ``srvPass123`` / nonce ``a1b2c3d4e5f60718``.
The client hands out the server nonce ``1122334455667788`` in package 3.
"""

PKG1_CLIENT_INIT = b"""\
<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncHdr>
    <VerDTD>1.2</VerDTD>
    <VerProto>DM/1.2</VerProto>
    <SessionID>1A2</SessionID>
    <MsgID>1</MsgID>
    <Target><LocURI>https://dms.example.com/dm</LocURI></Target>
    <Source><LocURI>IMEI:490154203237518</LocURI><LocName>dmclient01</LocName></Source>
    <Cred>
      <Meta>
        <Type xmlns="syncml:metinf">syncml:auth-md5</Type>
        <Format xmlns="syncml:metinf">b64</Format>
      </Meta>
      <Data>Q3r6Z+uEU9+S9G0eEFL04w==</Data>
    </Cred>
    <Meta>
      <MaxMsgSize xmlns="syncml:metinf">10000</MaxMsgSize>
      <MaxObjSize xmlns="syncml:metinf">524288</MaxObjSize>
    </Meta>
  </SyncHdr>
  <SyncBody>
    <Alert>
      <CmdID>1</CmdID>
      <Data>1201</Data>
    </Alert>
    <Replace>
      <CmdID>2</CmdID>
      <Item>
        <Source><LocURI>./DevInfo/DevId</LocURI></Source>
        <Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta>
        <Data>IMEI:490154203237518</Data>
      </Item>
      <Item>
        <Source><LocURI>./DevInfo/Man</LocURI></Source>
        <Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta>
        <Data>ExampleCorp</Data>
      </Item>
      <Item>
        <Source><LocURI>./DevInfo/Mod</LocURI></Source>
        <Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta>
        <Data>EX-100</Data>
      </Item>
      <Item>
        <Source><LocURI>./DevInfo/DmV</LocURI></Source>
        <Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta>
        <Data>1.2</Data>
      </Item>
      <Item>
        <Source><LocURI>./DevInfo/Lang</LocURI></Source>
        <Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta>
        <Data>en-US</Data>
      </Item>
    </Replace>
    <Final/>
  </SyncBody>
</SyncML>"""

PKG2_SERVER_INIT = b"""\
<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncHdr>
    <VerDTD>1.2</VerDTD>
    <VerProto>DM/1.2</VerProto>
    <SessionID>1A2</SessionID>
    <MsgID>1</MsgID>
    <Target><LocURI>IMEI:490154203237518</LocURI></Target>
    <Source><LocURI>https://dms.example.com/dm</LocURI><LocName>com.example.dms</LocName></Source>
    <RespURI>https://dms.example.com/dm?s=1A2&amp;dev=490154203237518</RespURI>
    <Cred>
      <Meta>
        <Type xmlns="syncml:metinf">syncml:auth-md5</Type>
        <Format xmlns="syncml:metinf">b64</Format>
      </Meta>
      <Data>FW66ju32iLhlrhkMJpX8JQ==</Data>
    </Cred>
  </SyncHdr>
  <SyncBody>
    <Status>
      <CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>
      <TargetRef>https://dms.example.com/dm</TargetRef>
      <SourceRef>IMEI:490154203237518</SourceRef>
      <Chal>
        <Meta>
          <Type xmlns="syncml:metinf">syncml:auth-md5</Type>
          <Format xmlns="syncml:metinf">b64</Format>
          <NextNonce xmlns="syncml:metinf">Dx4tPEtaaXg=</NextNonce>
        </Meta>
      </Chal>
      <Data>212</Data>
    </Status>
    <Status>
      <CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>1</CmdRef><Cmd>Alert</Cmd><Data>200</Data>
    </Status>
    <Status>
      <CmdID>3</CmdID><MsgRef>1</MsgRef><CmdRef>2</CmdRef><Cmd>Replace</Cmd><Data>200</Data>
    </Status>
    <Get>
      <CmdID>4</CmdID>
      <Item><Target><LocURI>./DevDetail/SwV</LocURI></Target></Item>
    </Get>
    <Replace>
      <CmdID>5</CmdID>
      <Item>
        <Target><LocURI>./DMAcc/example/Name</LocURI></Target>
        <Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta>
        <Data>Example Management Server</Data>
      </Item>
    </Replace>
    <Final/>
  </SyncBody>
</SyncML>"""

PKG3_CLIENT_RESPONSE = b"""\
<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncHdr>
    <VerDTD>1.2</VerDTD>
    <VerProto>DM/1.2</VerProto>
    <SessionID>1A2</SessionID>
    <MsgID>2</MsgID>
    <Target><LocURI>https://dms.example.com/dm?s=1A2&amp;dev=490154203237518</LocURI></Target>
    <Source><LocURI>IMEI:490154203237518</LocURI></Source>
  </SyncHdr>
  <SyncBody>
    <Status>
      <CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>
      <TargetRef>IMEI:490154203237518</TargetRef>
      <SourceRef>https://dms.example.com/dm</SourceRef>
      <Chal>
        <Meta>
          <Type xmlns="syncml:metinf">syncml:auth-md5</Type>
          <Format xmlns="syncml:metinf">b64</Format>
          <NextNonce xmlns="syncml:metinf">ESIzRFVmd4g=</NextNonce>
        </Meta>
      </Chal>
      <Data>212</Data>
    </Status>
    <Status>
      <CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>4</CmdRef><Cmd>Get</Cmd>
      <TargetRef>./DevDetail/SwV</TargetRef><Data>200</Data>
    </Status>
    <Status>
      <CmdID>3</CmdID><MsgRef>1</MsgRef><CmdRef>5</CmdRef><Cmd>Replace</Cmd>
      <TargetRef>./DMAcc/example/Name</TargetRef><Data>200</Data>
    </Status>
    <Results>
      <CmdID>4</CmdID><MsgRef>1</MsgRef><CmdRef>4</CmdRef>
      <Item>
        <Source><LocURI>./DevDetail/SwV</LocURI></Source>
        <Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta>
        <Data>4.2.1</Data>
      </Item>
    </Results>
    <Final/>
  </SyncBody>
</SyncML>"""

PKG4_SERVER_CLOSE = b"""\
<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncHdr>
    <VerDTD>1.2</VerDTD>
    <VerProto>DM/1.2</VerProto>
    <SessionID>1A2</SessionID>
    <MsgID>2</MsgID>
    <Target><LocURI>IMEI:490154203237518</LocURI></Target>
    <Source><LocURI>https://dms.example.com/dm</LocURI></Source>
  </SyncHdr>
  <SyncBody>
    <Status>
      <CmdID>1</CmdID><MsgRef>2</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>
      <TargetRef>https://dms.example.com/dm?s=1A2&amp;dev=490154203237518</TargetRef>
      <SourceRef>IMEI:490154203237518</SourceRef>
      <Data>200</Data>
    </Status>
    <Final/>
  </SyncBody>
</SyncML>"""
