// A minimal C++ consumer of poa_gres_ros/msg/GresInstances, as a grasp planner would use it:
// deserialise CDR bytes written by rclpy with the generated C++ type support, print the fields
// it needs, then build a message in C++ and serialise it for the Python side to read back.
//   usage: gres_consumer IN.cdr OUT.cdr
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "poa_gres_ros/msg/gres_instances.hpp"
#include "rcutils/allocator.h"
#include "rmw/rmw.h"
#include "rmw/serialized_message.h"
#include "rosidl_typesupport_cpp/message_type_support.hpp"

int main(int argc, char ** argv)
{
  if (argc != 3) {
    std::cerr << "usage: gres_consumer IN.cdr OUT.cdr\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto alloc = rcutils_get_default_allocator();
  rmw_serialized_message_t ser = rmw_get_zero_initialized_serialized_message();
  if (rmw_serialized_message_init(&ser, bytes.size(), &alloc) != RMW_RET_OK) {return 3;}
  std::memcpy(ser.buffer, bytes.data(), bytes.size());
  ser.buffer_length = bytes.size();

  const auto * ts =
    rosidl_typesupport_cpp::get_message_type_support_handle<poa_gres_ros::msg::GresInstances>();
  poa_gres_ros::msg::GresInstances msg;
  if (rmw_deserialize(&ser, ts, &msg) != RMW_RET_OK) {
    std::cerr << "rmw_deserialize failed\n";
    return 4;
  }
  std::cout << "frame_id=" << msg.header.frame_id << "\n"
            << "stamp_sec=" << msg.header.stamp.sec << "\n"
            << "instruction=" << msg.instruction << "\n"
            << "instruction_id=" << msg.instruction_id << "\n"
            << "no_target=" << (msg.no_target ? 1 : 0) << "\n"
            << "num_instances=" << msg.instances.size() << "\n"
            << "num_phrases=" << msg.phrases.size() << "\n"
            << "depth_status=" << static_cast<int>(msg.depth_status)
            << " invalid=" << (msg.depth_status == msg.DEPTH_INVALID ? 1 : 0) << "\n"
            << "depth_detail=" << msg.depth_detail << "\n";
  for (const auto & inst : msg.instances) {
    unsigned long mask_sum = 0;  // NOLINT
    for (auto v : inst.mask.data) {mask_sum += v;}
    std::cout << "instance id=" << inst.id << " relevance=" << inst.relevance
              << " phrase=" << inst.phrase.text << " roi=" << inst.bbox.x_offset << ","
              << inst.bbox.y_offset << "," << inst.bbox.width << "," << inst.bbox.height
              << " mask=" << inst.mask.width << "x" << inst.mask.height << " sum=" << mask_sum
              << "\n";
    // what a grasp planner reads: the instance in the camera optical frame, metres
    const auto & g = inst.geometry;
    std::cout << "geometry id=" << inst.id << " valid=" << (g.valid ? 1 : 0)
              << " centroid=" << g.centroid.x << "," << g.centroid.y << "," << g.centroid.z
              << " box=" << g.box_center.z << "/" << g.box_size.x << "," << g.box_size.y << ","
              << g.box_size.z << " q=" << g.orientation.z << "," << g.orientation.w
              << " orientation_valid=" << (g.orientation_valid ? 1 : 0)
              << " extent=" << g.principal_extent.x << " points=" << g.num_points
              << " missing=" << g.missing_depth_fraction << "\n";
  }

  poa_gres_ros::msg::GresInstances out;
  out.header.frame_id = "cpp_frame";
  out.instruction = "the blue cube";
  out.instruction_id = 7;
  poa_gres_ros::msg::GresInstance inst;
  inst.id = 0;
  inst.relevance = 0.75f;
  inst.phrase.text = "blue cube";
  inst.phrase.char_start = 4;
  inst.phrase.char_end = 13;
  inst.bbox.width = 2;
  inst.bbox.height = 3;
  inst.mask.encoding = "mono8";
  inst.mask.width = 2;
  inst.mask.height = 3;
  inst.mask.step = 2;
  inst.mask.data = {0, 255, 255, 255, 0, 255};
  inst.geometry.valid = true;
  inst.geometry.centroid.x = 0.25;
  inst.geometry.centroid.z = 0.5;
  inst.geometry.orientation.w = 1.0;
  inst.geometry.num_points = 99;
  inst.geometry.missing_depth_fraction = 0.5f;
  out.instances.push_back(inst);
  out.depth_status = poa_gres_ros::msg::GresInstances::DEPTH_OK;
  rmw_serialized_message_t ser_out = rmw_get_zero_initialized_serialized_message();
  if (rmw_serialized_message_init(&ser_out, 0, &alloc) != RMW_RET_OK) {return 3;}
  if (rmw_serialize(&out, ts, &ser_out) != RMW_RET_OK) {return 5;}
  std::ofstream o(argv[2], std::ios::binary);
  o.write(reinterpret_cast<const char *>(ser_out.buffer), ser_out.buffer_length);
  const bool ok = rmw_serialized_message_fini(&ser) == RMW_RET_OK &&
    rmw_serialized_message_fini(&ser_out) == RMW_RET_OK;
  return ok ? 0 : 6;
}
